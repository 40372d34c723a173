// The codeloop web page: a chat over POST /v1/tasks (Server-Sent Events), a code cell runner over
// /v1/sessions, and the history list. Plain DOM, no framework, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
};

// -- the server ---------------------------------------------------------------------------------

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const token = $("token").value.trim() || localStorage.getItem("codeloop-token") || "";
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(await errorText(response));
  return response.status === 204 ? null : response.json();
}

async function errorText(response) {
  try {
    const data = await response.json();
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    return `${response.status}: ${detail}`;
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

// -- rendering pieces shared by the chat, the history and the cell runner -----------------------

function codeBlock(code) {
  const pre = el("pre", "code");
  const c = el("code", "language-python");
  c.innerHTML = window.highlightPython(code);
  pre.appendChild(c);
  return pre;
}

// Model text with its ```fences``` shown as highlighted code and the rest as plain text.
function renderModelText(container, text) {
  container.textContent = "";
  const parts = text.split(/```[a-zA-Z0-9_+-]*\n?/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) container.appendChild(codeBlock(part.replace(/\n$/, "")));
    else if (part.trim()) container.appendChild(el("div", "prose", part.trim()));
  });
}

function figureImg(b64) {
  const img = el("img", "figure");
  img.alt = "figure";
  img.src = "data:image/png;base64," + b64;
  return img;
}

// A cell's result (the /run object or a history step's "result"): output, value, error, figures.
function renderResult(container, result, figures) {
  container.textContent = "";
  if (result.stdout) container.appendChild(el("pre", "stdout", result.stdout));
  if (result.stderr) container.appendChild(el("pre", "stderr", result.stderr));
  if (result.value !== null && result.value !== undefined) container.appendChild(el("pre", "value", result.value));
  if (result.error) container.appendChild(el("pre", "error", result.error.traceback || `${result.error.ename}: ${result.error.evalue}`));
  for (const note of result.notes || []) container.appendChild(el("div", "note", note));
  for (const b64 of figures || []) container.appendChild(figureImg(b64));
  const status = el("div", "status status-" + result.status, `${result.status} · ${Number(result.duration || 0).toFixed(2)} s`);
  container.appendChild(status);
}

function answerBox(result) {
  if (result.answer !== null && result.answer !== undefined && result.ok) {
    const box = el("div", "answer");
    box.appendChild(el("strong", null, "Answer: "));
    box.appendChild(el("span", "answer-text", result.answer));
    return box;
  }
  return el("div", "answer failed", `No answer (${result.status})${result.error ? ": " + result.error : ""}`);
}

function scrollDown() {
  const m = $("messages");
  m.scrollTop = m.scrollHeight;
}

// -- the chat -----------------------------------------------------------------------------------

let running = null; // the AbortController of the task being streamed

async function sendTask(event) {
  event.preventDefault();
  const task = $("task").value.trim();
  if (!task || running) return;
  $("task").value = "";
  const messages = $("messages");
  messages.appendChild(el("div", "msg user", task));
  const turn = el("div", "msg assistant");
  turn.appendChild(el("div", "meta pending", "working… (the first task loads the model)"));
  messages.appendChild(turn);
  scrollDown();
  running = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const body = { task };
  const model = $("model").value.trim();
  if (model) body.model = model;
  try {
    const response = await fetch("/v1/tasks", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
      body: JSON.stringify(body),
      signal: running.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response, (type, data) => handleEvent(turn, type, data));
  } catch (e) {
    if (e.name === "AbortError") {
      turn.appendChild(el("div", "answer failed", "Stopped."));
      setTimeout(loadHistory, 1500); // the server records the stop once the loop has wound down
    } else {
      turn.appendChild(el("div", "answer failed", "Error: " + e.message));
    }
  } finally {
    running = null;
    $("send").disabled = false;
    $("stop").disabled = true;
    scrollDown();
    loadHistory();
  }
}

// Read a text/event-stream body and call onEvent(type, data) per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(type, JSON.parse(data.join("\n")));
    }
  }
}

function handleEvent(turn, type, data) {
  const state = turn._state || (turn._state = { text: null, raw: "", output: null });
  const pending = turn.querySelector(".pending");
  if (pending) pending.remove();
  switch (type) {
    case "start":
      turn.dataset.historyId = data.id === null ? "" : String(data.id);
      turn.appendChild(el("div", "meta", `model ${data.model}`));
      break;
    case "model_start":
      state.raw = "";
      state.text = el("div", "model-text");
      turn.appendChild(state.text);
      break;
    case "text":
      state.raw += data.text;
      if (state.text) renderModelText(state.text, state.raw);
      break;
    case "cell":
      state.output = el("div", "cell-output running");
      state.output.appendChild(el("div", "cell-label", `cell ${data.step + 1} output`));
      state.live = el("pre", "stdout");
      state.output.appendChild(state.live);
      turn.appendChild(state.output);
      break;
    case "output":
      if (state.live) state.live.textContent += data.text;
      break;
    case "step": {
      const step = data.step;
      if (step.result && state.output) {
        state.output.classList.remove("running");
        const body = el("div", "cell-result");
        renderResult(body, step.result, step.figures);
        state.output.replaceChild(body, state.live);
        state.live = null;
      }
      state.output = null;
      break;
    }
    case "notice":
      turn.appendChild(el("div", "notice", data.message));
      break;
    case "done":
      turn.appendChild(answerBox(data.result));
      if (data.result.id !== null && data.result.id !== undefined) turn.dataset.historyId = String(data.result.id);
      break;
    case "error":
      turn.appendChild(el("div", "answer failed", "Error: " + data.message));
      break;
  }
  scrollDown();
}

function stopTask() {
  if (running) running.abort();
}

// -- the history --------------------------------------------------------------------------------

async function loadHistory() {
  const list = $("history");
  try {
    const rows = await api("GET", "/v1/history?limit=50");
    list.textContent = "";
    if (!rows.length) list.appendChild(el("li", "empty", "No runs yet."));
    for (const row of rows) {
      const item = el("li", "history-item");
      item.dataset.id = String(row.id);
      item.appendChild(el("span", "title", row.title));
      item.appendChild(el("span", "status status-" + (row.last_status || "none"), row.last_status || "-"));
      item.addEventListener("click", () => showRun(row.id));
      list.appendChild(item);
    }
  } catch (e) {
    list.textContent = "";
    list.appendChild(el("li", "empty", e.message));
  }
}

async function showRun(id) {
  selectTab("chat");
  const messages = $("messages");
  try {
    const conv = await api("GET", `/v1/history/${id}`);
    messages.textContent = "";
    const head = el("div", "meta");
    head.appendChild(document.createTextNode(`${conv.kind} ${conv.id} · model ${conv.model} · `));
    const link = el("a", "ipynb", "download .ipynb");
    link.href = "#";
    link.addEventListener("click", (e) => { e.preventDefault(); downloadNotebook(id); });
    head.appendChild(link);
    messages.appendChild(head);
    for (const turn of conv.turns) {
      messages.appendChild(el("div", "msg user", turn.task));
      const box = el("div", "msg assistant");
      for (const step of turn.steps) {
        const text = el("div", "model-text");
        renderModelText(text, step.model_text || "");
        box.appendChild(text);
        if (step.result) {
          const out = el("div", "cell-output");
          renderResult(out, step.result, step.figures);
          box.appendChild(out);
        }
      }
      box.appendChild(answerBox(turn));
      messages.appendChild(box);
    }
  } catch (e) {
    messages.appendChild(el("div", "answer failed", e.message));
  }
}

async function downloadNotebook(id) {
  const response = await fetch(`/v1/history/${id}.ipynb`, { headers: headers() });
  if (!response.ok) { alert(await errorText(response)); return; }
  const url = URL.createObjectURL(await response.blob());
  const a = el("a");
  a.href = url;
  a.download = `codeloop-${id}.ipynb`;
  a.click();
  URL.revokeObjectURL(url);
}

// -- the code cell runner -----------------------------------------------------------------------

let cellSession = null;

async function runCell() {
  const code = $("code").value;
  const status = $("cell-status");
  $("run-cell").disabled = true;
  status.textContent = "running…";
  try {
    if (!cellSession) cellSession = (await api("POST", "/v1/sessions", {})).id;
    let result;
    try {
      result = await api("POST", `/v1/sessions/${cellSession}/run`, { code });
    } catch (e) {
      if (!e.message.startsWith("404")) throw e;
      cellSession = (await api("POST", "/v1/sessions", {})).id; // reaped while idle: start again
      result = await api("POST", `/v1/sessions/${cellSession}/run`, { code });
    }
    const box = el("div", "cell-run");
    box.appendChild(el("div", "cell-label", `In [${result.cell}]`));
    box.appendChild(codeBlock(code));
    const out = el("div", "cell-result");
    renderResult(out, result, result.figures);
    box.appendChild(out);
    $("cell-results").prepend(box);
    status.textContent = "";
  } catch (e) {
    status.textContent = e.message;
  } finally {
    $("run-cell").disabled = false;
  }
}

async function resetCell() {
  if (cellSession) {
    try { await api("DELETE", `/v1/sessions/${cellSession}`); } catch (e) { /* already gone */ }
  }
  cellSession = null;
  $("cell-results").textContent = "";
  $("cell-status").textContent = "new session on the next run";
}

// -- wiring -------------------------------------------------------------------------------------

function selectTab(name) {
  $("chat-view").hidden = name !== "chat";
  $("cell-view").hidden = name !== "cell";
  $("tab-chat").classList.toggle("active", name === "chat");
  $("tab-cell").classList.toggle("active", name === "cell");
}

async function init() {
  $("task-form").addEventListener("submit", sendTask);
  $("task").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("task-form").requestSubmit(); }
  });
  $("stop").addEventListener("click", stopTask);
  $("run-cell").addEventListener("click", runCell);
  $("code").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.shiftKey || e.ctrlKey)) { e.preventDefault(); runCell(); }
  });
  $("reset-cell").addEventListener("click", resetCell);
  $("tab-chat").addEventListener("click", () => selectTab("chat"));
  $("tab-cell").addEventListener("click", () => selectTab("cell"));
  $("history-refresh").addEventListener("click", loadHistory);
  $("token").value = localStorage.getItem("codeloop-token") || "";
  $("token").addEventListener("change", () => {
    localStorage.setItem("codeloop-token", $("token").value.trim());
    loadHistory();
  });
  try {
    const health = await (await fetch("/healthz")).json();
    $("token-box").hidden = !health.token_required;
  } catch (e) { /* the server is down: the history shows the error */ }
  loadHistory();
}

init();
