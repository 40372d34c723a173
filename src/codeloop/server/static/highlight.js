// A small Python syntax highlighter: no dependencies, no build step, safe (text is escaped).
"use strict";

const PY_KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else " +
  "except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield " +
  "match case").split(" "));
const PY_BUILTINS = new Set(("abs all any bool dict enumerate filter float format int isinstance len list map max " +
  "min open print range repr reversed round set sorted str sum tuple type zip").split(" "));

const PY_TOKEN = new RegExp([
  "(#[^\\n]*)",                                                   // 1 comment
  "([rbfuRBFU]{0,2}(?:'''[\\s\\S]*?(?:'''|$)|\"\"\"[\\s\\S]*?(?:\"\"\"|$)|'(?:\\\\.|[^'\\\\\\n])*'?|\"(?:\\\\.|[^\"\\\\\\n])*\"?))", // 2 string
  "(\\b(?:0[xob][0-9a-fA-F_]+|\\d[\\d_]*\\.?[\\d_]*(?:[eE][+-]?\\d+)?j?)\\b)", // 3 number
  "([A-Za-z_][A-Za-z0-9_]*)",                                    // 4 name
].join("|"), "g");

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function highlightPython(code) {
  let out = "";
  let last = 0;
  let previous = "";
  PY_TOKEN.lastIndex = 0;
  for (let m = PY_TOKEN.exec(code); m !== null; m = PY_TOKEN.exec(code)) {
    if (m[0] === "") { PY_TOKEN.lastIndex++; continue; }
    out += escapeHtml(code.slice(last, m.index));
    const text = escapeHtml(m[0]);
    let cls = null;
    if (m[1] !== undefined) cls = "tok-comment";
    else if (m[2] !== undefined) cls = "tok-string";
    else if (m[3] !== undefined) cls = "tok-number";
    else if (PY_KEYWORDS.has(m[4])) cls = "tok-keyword";
    else if (previous === "def" || previous === "class") cls = "tok-def";
    else if (PY_BUILTINS.has(m[4])) cls = "tok-builtin";
    out += cls ? `<span class="${cls}">${text}</span>` : text;
    previous = m[4] !== undefined ? m[4] : "";
    last = m.index + m[0].length;
  }
  return out + escapeHtml(code.slice(last));
}

window.highlightPython = highlightPython;
window.escapeHtml = escapeHtml;
