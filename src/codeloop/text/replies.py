"""Find the code in a model reply: fenced blocks, unterminated fences, bare code, prose around it.

Small models are sloppy with Markdown, so this is lenient on purpose: a fence may open in the
middle of a line, close at the end of a code line, carry any info string, or never close.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

__all__ = [
    "PYTHON_LANGS",
    "CodeBlock",
    "ParsedReply",
    "cut_after_first_block",
    "find_code_blocks",
    "parse_reply",
]

# Info strings whose block is run as Python; "" is a bare ``` fence.
PYTHON_LANGS = frozenset({"", "python", "py", "python3", "py3", "ipython", "ipython3", "pycon"})

_OPEN = re.compile(r"(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)(?:\n|$)")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its code, language tag, character span in the reply, and whether it closed."""

    code: str
    lang: str
    start: int
    end: int
    closed: bool

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON_LANGS


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into the prose before the first Python block, that block, and the prose after."""

    text: str
    code: str | None
    before: str
    after: str

    @property
    def prose(self) -> str:
        """The reply's words without the code, for display and as the answer when there is no code."""
        return "\n\n".join(p for p in (self.before.strip(), self.after.strip()) if p)


def _clean_code(raw: str) -> str:
    lines = textwrap.dedent(raw.expandtabs(4)).rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(line.rstrip() for line in lines)


def find_code_blocks(text: str, *, final: bool = True) -> list[CodeBlock]:
    """Every fenced block in ``text``, in order; an unclosed last fence runs to the end of the text.

    A closing fence must end its line (a fence inside a string literal does not close the block).
    While a reply is still streaming (``final=False``) the end of the text is not yet the end of a
    line, so a fence there does not count as closed until its newline arrives.
    """
    blocks: list[CodeBlock] = []
    pos = 0
    while True:
        m = _OPEN.search(text, pos)
        if m is None:
            return blocks
        fence = m["fence"]
        info = m["info"].strip()
        lang = info.split()[0].lower().strip("{}.") if info else ""
        body_start = m.end()
        line_end = r"[ \t]*(?=\n|$)" if final else r"[ \t]*(?=\n)"
        close = re.compile(re.escape(fence[0]) + "{" + str(len(fence)) + ",}" + line_end).search(
            text, body_start
        )
        if close is None:
            blocks.append(CodeBlock(_clean_code(text[body_start:]), lang, m.start(), len(text), False))
            return blocks
        blocks.append(
            CodeBlock(_clean_code(text[body_start : close.start()]), lang, m.start(), close.end(), True)
        )
        pos = close.end()


def looks_like_bare_code(text: str) -> bool:
    """Whether an unfenced reply is a program rather than prose.

    It must parse, and do something: a statement (assignment, import, loop...) or a call.
    Expressions alone are answers, even when they parse ("42", "Paris", "2^64 is 18446744073709551616.").
    """
    stripped = text.strip()
    if not stripped:
        return False
    try:
        tree = ast.parse(stripped)
    except (SyntaxError, ValueError):
        return False
    return any(not isinstance(node, ast.Expr) or isinstance(node.value, ast.Call) for node in tree.body)


def parse_reply(text: str) -> ParsedReply:
    """Split a reply around its first Python block (or treat an unfenced program as one block)."""
    for block in find_code_blocks(text):
        if block.is_python and block.code.strip():
            return ParsedReply(text, block.code, text[: block.start], text[block.end :])
    if "```" not in text and looks_like_bare_code(text):
        return ParsedReply(text, _clean_code(text), "", "")
    return ParsedReply(text, None, text, "")


def cut_after_first_block(text: str) -> str | None:
    """The reply up to the end of its first closed Python block, or None when no such block closed yet.

    The loop stops generation here so the model cannot go on to invent the program's output.
    """
    for block in find_code_blocks(text, final=False):
        if not block.closed:
            return None
        if block.is_python and block.code.strip():
            return text[: block.end]
    return None
