"""``codeloop debug``: run a script under monitoring in the sandbox, explain the failure, propose a fix.

>>> from codeloop.workflows.debug import debug
>>> result = debug("report.py", ["--month", "3"], fix=True)
>>> print(format_debug(result))

The script runs on a copy of its directory in the sandbox under
:mod:`codeloop.workflows.debug_monitor`: the lines executed with the values they set, the failing
frame and its callers with their variables, or, for a hang, where it spins. The model explains the
root cause from that evidence and proposes a corrected function (or script) as a diff; with
``fix=True`` the diff is applied to the copy and the script rerun to show the failure is gone
(greedy first, then a few sampled candidates until one runs clean); ``write=True`` then applies it
to the user's file atomically with a backup. Without ``write`` no user file is changed.

The explain step and the rerun are the phases of :class:`DebugWorkflow`, run by the engine's loop
(:func:`codeloop.engine.drive`), the same loop as ``codeloop fix`` and the agent.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.engine.loop import Review, Verdict, drive
from codeloop.errors import SandboxError
from codeloop.llm.types import Message
from codeloop.sandbox import Sandbox
from codeloop.text.replies import find_code_blocks
from codeloop.workflows import debug_monitor
from codeloop.workflows.fix import Emit, ModelReplies, ModelSource, emitter
from codeloop.workflows.fix_sandbox import ProjectSandbox
from codeloop.workflows.patch import (
    find_function,
    function_at_line,
    replace_function,
    review_change,
    unified_diff,
)
from codeloop.workflows.safewrite import write_changes
from codeloop.workflows.snapshot import InputError, Snapshot, find_project_root, read_nofollow, take_snapshot

__all__ = ["DebugResult", "DebugRun", "DebugWorkflow", "Proposal", "debug", "format_debug"]

Event = Callable[[str, dict[str, Any]], None]

LIMITS = {"head": 30, "tail": 40, "max_repr": 80, "max_vars": 12, "max_frames": 6}

SYSTEM = (
    "You are an expert Python debugger. You get a script, how it failed, and a trace of its run with the "
    "values of the variables. First explain the root cause in two or three sentences, quoting the values "
    "from the evidence (do not guess). Then give the corrected code in one ```python block."
)


def _s(value: Any, limit: int = 300) -> str:
    return str(value)[:limit] if value is not None else ""


def _vars(raw: Any, limit: int = 16) -> dict[str, str]:
    return {_s(k, 80): _s(v, 200) for k, v in list(raw.items())[:limit]} if isinstance(raw, dict) else {}


def _int(raw: Any) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


@dataclass
class DebugRun:
    """What the monitor saw in one run of the script (read from the sandbox, bounded)."""

    status: str  # ok, exception, exit, timeout, crashed
    exit_code: int | None
    message: str = ""
    exception_type: str = ""
    frames: list[dict[str, Any]] = field(default_factory=list)  # outermost first; the last is the failing frame
    head: list[dict[str, Any]] = field(default_factory=list)
    tail: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    lines_run: int = 0
    hot_lines: list[tuple[str, int, int]] = field(default_factory=list)
    spin: dict[str, Any] | None = None
    stdout: str = ""
    duration: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "exit_code": self.exit_code, "message": self.message,
            "exception_type": self.exception_type, "frames": self.frames, "trace_head": self.head,
            "trace_tail": self.tail, "events": self.events, "lines_run": self.lines_run,
            "hot_lines": [list(h) for h in self.hot_lines], "spin": self.spin, "output": self.stdout,
            "duration": round(self.duration, 3),
        }


@dataclass
class DebugResult:
    """The monitored run, the model's explanation and proposed fix, and (with ``fix``) the rerun."""

    script: str
    run: DebugRun
    evidence: str = ""
    explanation: str = ""
    quotes_evidence: bool = False
    diff: str = ""
    fixed: bool | None = None  # None: no fix was tried
    rerun: DebugRun | None = None
    written: list[dict[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""
    new_text: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "script": self.script, "status": self.run.status, "failed": self.run.failed, "run": self.run.to_dict(),
            "evidence": self.evidence, "explanation": self.explanation, "quotes_evidence": self.quotes_evidence,
            "diff": self.diff, "fixed": self.fixed, "rerun": self.rerun.to_dict() if self.rerun else None,
            "written": list(self.written), "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "message": self.message,
        }


def _event_list(raw: Any) -> list[dict[str, Any]]:
    out = []
    for e in (raw or [])[:100] if isinstance(raw, list) else []:
        if not isinstance(e, dict):
            continue
        item: dict[str, Any] = {"file": _s(e.get("file"), 300), "line": _int(e.get("line")), "fn": _s(e.get("fn"), 100),
                                "vars": _vars(e.get("vars"))}
        if isinstance(e.get("call"), dict):
            item["call"] = _vars(e["call"])
        for key in ("ret", "exc"):
            if e.get(key) is not None:
                item[key] = _s(e[key], 200)
        out.append(item)
    return out


def _monitor_cell(script: str, args: list[str], timeout: float, limits: dict[str, Any]) -> str:  # pragma: no cover - runs in the sandbox
    """Run the monitor on ./project/SCRIPT as a child process; return its record and the output (in the sandbox)."""
    import json
    import os
    import subprocess
    import sys

    here = os.path.abspath(".codeloop_fix")
    out_path = os.path.join(here, "debug.json")
    if os.path.exists(out_path):
        os.remove(out_path)
    config = os.path.join(here, "debug-config.json")
    limits = dict(limits, timeout=timeout)
    with open(config, "w") as f:
        json.dump({"script": os.path.abspath(os.path.join("project", script)), "root": os.path.abspath("project"), "args": args, "limits": limits,
                   "output": out_path}, f)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        proc = subprocess.run([sys.executable, os.path.join(here, "_codeloop_debug_monitor.py"), config], cwd="project",
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout + 20)
        code, out = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as e:
        code, out = None, e.output or b""
    record = None
    if os.path.exists(out_path):
        with open(out_path, encoding="utf-8", errors="replace") as f:
            record = f.read(2_000_000)
    return json.dumps({"code": code, "output": out[-6000:].decode("utf-8", "replace"), "record": record})


def _read_debug_run(value: str | None) -> DebugRun:
    try:
        raw = json.loads(ast.literal_eval(value or "''"))
        record = json.loads(raw["record"]) if isinstance(raw.get("record"), str) else None
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError) as e:
        raise SandboxError(f"unreadable debug record from the sandbox: {e}") from None
    output = _s(raw.get("output"), 6000)
    if not isinstance(record, dict):
        return DebugRun(status="crashed", exit_code=raw.get("code") if isinstance(raw.get("code"), int) else None,
                        message="the script ended without a record (killed, or it broke the monitor)", stdout=output)
    raw_exc = record.get("exception")
    exc = raw_exc if isinstance(raw_exc, dict) else {}
    frames = []
    for f in (record.get("frames") or [])[:8] if isinstance(record.get("frames"), list) else []:
        if isinstance(f, dict):
            frames.append({"file": _s(f.get("file"), 300), "line": _int(f.get("line")),
                           "function": _s(f.get("function"), 100), "locals": _vars(f.get("locals"))})
    spin = None
    if isinstance(record.get("spin"), dict):
        s = record["spin"]
        spin = {"file": _s(s.get("file"), 300), "function": _s(s.get("function"), 100), "line": _int(s.get("line")),
                "lines": [_int(x) for x in (s.get("lines") or [])[:20] if isinstance(s.get("lines"), list)],
                "stays": _vars(s.get("stays")), "changes": _vars(s.get("changes"))}
    status = _s(record.get("status"), 20)
    hot = []
    for h in (record.get("hot_lines") or [])[:8] if isinstance(record.get("hot_lines"), list) else []:
        if isinstance(h, list) and len(h) == 3:
            hot.append((_s(h[0], 300), _int(h[1]), _int(h[2])))
    exit_code = record.get("exit_code")
    return DebugRun(
        status=status if status in ("ok", "exception", "exit", "timeout") else "crashed",
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        message=_s(record.get("message"), 600), exception_type=_s(exc.get("type"), 100),
        frames=frames, head=_event_list(record.get("head")), tail=_event_list(record.get("tail")),
        events=_int(record.get("events")), lines_run=_int(record.get("lines_run")), hot_lines=hot, spin=spin,
        stdout=output, duration=float(record["duration"]) if isinstance(record.get("duration"), int | float) else 0.0,
    )


def _annotate(run: DebugRun, texts: dict[str, str]) -> DebugRun:
    """Add each frame's source line (from the user's file as read, not from the sandbox)."""
    for f in run.frames:
        f["code"] = _line_text(texts, f["file"], f["line"])
    return run


def _line_text(texts: dict[str, str], file: str, line: int) -> str:
    lines = texts.get(file, "").splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _event_text(e: dict[str, Any], texts: dict[str, str]) -> str:
    if "call" in e:
        args = ", ".join(f"{k}={v}" for k, v in e["call"].items())
        return f"call {e['fn']}({args})"
    parts = [f"{k}={v}" for k, v in e["vars"].items()]
    if "ret" in e:
        parts.append(f"returns {e['ret']}")
    if "exc" in e:
        parts.append(f"raises {e['exc']}")
    values = ("   # " + ", ".join(parts)) if parts else ""
    return f"{e['file']}:{e['line']:<4} {_line_text(texts, e['file'], e['line'])}{values}"


def evidence_text(run: DebugRun, texts: dict[str, str], *, max_events: int = 25) -> str:
    """The evidence in plain text: the failure, the failing frame and callers with values, the trace tail."""
    out: list[str] = []
    if run.status == "timeout" and run.spin:
        s = run.spin
        out.append(f"The script hangs: {run.message}, spinning in `{s['function']}` ({s['file']} lines "
                   f"{', '.join(map(str, s['lines'])) or s['line']}).")
        if s["stays"]:
            out.append("Values that stay the same while it loops: " + ", ".join(f"{k} = {v}" for k, v in s["stays"].items()))
        if s["changes"]:
            out.append("Values that keep changing: " + ", ".join(f"{k} = {v}" for k, v in s["changes"].items()))
    elif run.message:
        out.append(f"The script failed: {run.message}")
    for i, f in enumerate(reversed(run.frames)):
        where = "Failing frame" if i == 0 else "called from"
        out.append(f"{where}: `{f['function']}` at {f['file']}:{f['line']}: {_line_text(texts, f['file'], f['line'])}")
        if f["locals"]:
            out.append("    " + ", ".join(f"{k} = {v}" for k, v in f["locals"].items()))
    events = (run.head + run.tail)[-max_events:]
    if events:
        omitted = run.events - len(run.head) - len(run.tail)
        out.append(f"The last lines that ran ({run.lines_run} lines in all{', some omitted' if omitted > 0 else ''}):")
        out += ["    " + _event_text(e, texts) for e in events]
    return "\n".join(out)


def _numbered(text: str, limit: int = 120) -> str:
    lines = text.splitlines()
    shown = [f"{n:>4} | {line}" for n, line in enumerate(lines[:limit], 1)]
    if len(lines) > limit:
        shown.append(f"     ... {len(lines) - limit} more lines")
    return "\n".join(shown)


def _messages(script: str, text: str, evidence: str, function: str | None) -> list[Message]:
    ask = (f"Give the corrected function `{function}` in full." if function
           else "Give the corrected script in full.")
    user = (f"The script `{script}`:\n```\n{_numbered(text)}\n```\n\nWhat happened when it ran:\n{evidence}\n\n"
            f"Explain the root cause, quoting the values above. {ask}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _quotes(explanation: str, run: DebugRun) -> bool:
    """Whether the explanation quotes at least one value or the error from the evidence."""
    values = {v for f in run.frames for v in f["locals"].values()}
    if run.spin:
        values |= set(run.spin["stays"].values()) | set(run.spin["changes"].values())
    values = {v for v in values if len(v) >= 1 and v not in ("None", "True", "False")}
    if any(re.search(r"(?<![\w.])" + re.escape(v) + r"(?![\w.])", explanation) for v in values):
        return True
    return bool(run.exception_type) and run.exception_type in explanation


def _fault_function(run: DebugRun, texts: dict[str, str], script: str) -> tuple[str, str | None]:
    """(file, function) where the failure is: the failing (or spinning) frame's function, else the script."""
    frames = [f for f in run.frames if f["file"] in texts]
    if run.spin and run.spin["file"] in texts and run.spin["function"] != "<module>":
        span = find_function(texts[run.spin["file"]], run.spin["function"])
        if span is not None:
            return run.spin["file"], span.name
    for f in reversed(frames):
        if f["function"] == "<module>":
            break
        span = function_at_line(texts[f["file"]], f["line"])
        if span is not None:
            return f["file"], span.name
    return script, None


def _apply(code: str, text: str, function: str | None) -> str | None:
    if function is not None:
        return replace_function(text, function, code)
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    return code if code.endswith("\n") else code + "\n"


def debug(
    file: str | Path,
    args: Sequence[str] = (),
    *,
    model: ModelSource = None,
    use_model: bool = True,
    fix: bool = False,
    write: bool = False,
    timeout: float = 10.0,
    samples: int = 3,
    root: str | Path | None = None,
    sandbox: Sandbox | None = None,
    on_event: Event | None = None,
) -> DebugResult:
    """Run ``file`` with ``args`` under monitoring in the sandbox and explain what went wrong."""
    started = time.monotonic()
    timings = {"run_s": 0.0, "model_s": 0.0, "rerun_s": 0.0}
    event = emitter(on_event)
    path = Path(file).absolute()
    data = read_nofollow(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None
    try:
        ast.parse(text, filename=str(file))
    except SyntaxError as e:
        raise InputError(f"syntax error in {file}, line {e.lineno}: {e.msg}") from None
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    base = Path(root).absolute() if root is not None else find_project_root(path.parent)
    try:
        rel = path.relative_to(base).as_posix()
        snapshot = take_snapshot(base, max_files=500, max_bytes=8 << 20)
    except (ValueError, InputError):  # a huge or unrelated root: the script alone
        base, rel = path.parent, path.name
        snapshot = Snapshot(root=base, files={rel: data})
    snapshot.files[rel] = data
    texts = {k: v.decode("utf-8", "replace") for k, v in snapshot.files.items() if k.endswith(".py")}
    monitor = debug_monitor.script_source()
    setup = (f"import os\nos.makedirs('.codeloop_fix', exist_ok=True)\n"
             f"with open('.codeloop_fix/_codeloop_debug_monitor.py', 'w') as f:\n    f.write({monitor!r})\n")
    cell = ("from typing import Any\n" + inspect.getsource(_monitor_cell)
            + f"_monitor_cell({rel!r}, {list(args)!r}, {float(timeout)!r}, {LIMITS!r})\n")
    result = DebugResult(script=rel, run=DebugRun(status="ok", exit_code=0))
    with ProjectSandbox(snapshot, [rel], sandbox=sandbox) as box:
        box.run_cell(setup, "install the monitor")
        event("run", status="running", script=rel)
        t0 = time.monotonic()
        run = _annotate(_read_debug_run(box.run_cell(cell, "run the script", timeout=timeout + 40)), texts)
        timings["run_s"] = time.monotonic() - t0
        result.run = run
        event("run", status=run.status, message=run.message)
        if not run.failed:
            result.message = "the script ran without an error"
        else:
            result.evidence = evidence_text(run, texts)
            if use_model:
                file, function = _fault_function(run, texts, rel)
                replies = ModelReplies(model, max_tokens=800, timings=timings, event=event)
                drive(DebugWorkflow(result, replies, _Rerun(box, cell, texts, timings), file=file, text=texts[file],
                                    function=function, fix=fix, tries=max(1, samples) if fix else 1, event=event))
                result.message = _fix_message(result)
    if write and result.fixed and result.new_text:
        target = base / result.script if result.script != rel else path
        written = write_changes({target: (snapshot.files[result.script], result.new_text)})
        result.written = [{"path": str(w.path), "backup": str(w.backup)} for w in written]
    elif write and result.diff:
        result.message += "; nothing written (the fix was not shown to work)"
    timings["total_s"] = time.monotonic() - started
    result.timings = timings
    return result


@dataclass
class Proposal:
    """One model reply: its explanation and the file's corrected text (None when no code applies)."""

    index: int  # 0-based: candidate ``index + 1`` in the rerun events
    explanation: str
    text: str | None
    diff: str = ""


class DebugWorkflow:
    """"Explain a failure and show a fix works", driven by :func:`codeloop.engine.drive`.

    An attempt is a :class:`Proposal`; the job is one explanation and, with ``fix``, up to
    ``tries`` candidate fixes (greedy first, then sampled, seeded by their number).

    * generate: the explain step: ask the model, with the evidence, for the root cause and the
      corrected function (or script); the first reply's explanation is the one reported;
    * review: refuse a reply whose code does not apply, changes nothing, or games the run
      (:func:`~codeloop.workflows.patch.review_change`); the first usable one is the proposed
      diff; without ``fix`` that ends the job (STOP), with ``fix`` it is rerun;
    * run: the ``--fix`` rerun: the script run again on the copy with the fix applied;
    * observe: a clean rerun makes that fix the result; else the first rerun is kept to show;
    * judge: done when the rerun is clean; otherwise the next candidate (until ``tries``).

    Collaborators come as arguments: the model (:class:`~codeloop.workflows.fix.ModelReplies`),
    ``rerun(file, text)`` (the script rerun with ``file`` holding ``text`` in the copy, the copy
    put back after), and where events go. It fills in ``result``.
    """

    def __init__(self, result: DebugResult, replies: ModelReplies, rerun: Callable[[str, str], DebugRun], *,
                 file: str, text: str, function: str | None, fix: bool, tries: int, event: Emit) -> None:
        self.result = result
        self.replies = replies
        self.rerun = rerun
        self.file, self.text, self.function = file, text, function
        self.fix = fix
        self.tries = tries
        self.event = event
        self.messages = _messages(file, text, result.evidence, function)
        self.asked = 0

    def generate(self) -> Proposal | None:
        if self.asked >= self.tries:
            return None
        k = self.asked
        self.asked += 1
        reply = self.replies.ask(self.messages, temperature=0.0 if k == 0 else 0.8, seed=k)
        blocks = [b for b in find_code_blocks(reply) if b.is_python and b.code.strip()]
        explanation = reply[: blocks[0].start].strip() if blocks else reply.strip()
        if k == 0:
            self.result.explanation = explanation
            self.result.quotes_evidence = _quotes(explanation, self.result.run)
        text = next((t for b in blocks if (t := _apply(b.code, self.text, self.function)) is not None), None)
        return Proposal(index=k, explanation=explanation, text=text)

    def review(self, proposal: Proposal) -> Review:
        new = proposal.text
        if new is None or new == self.text or review_change({self.file: self.text}, {self.file: new}):
            return Review.SKIP
        proposal.diff = unified_diff({self.file: self.text}, {self.file: new})
        if not self.result.diff:  # the first usable proposal is the one shown until a rerun proves another
            self.result.diff, self.result.new_text, self.result.script = proposal.diff, new, self.file
        return Review.RUN if self.fix else Review.STOP

    def run(self, proposal: Proposal) -> DebugRun:
        assert proposal.text is not None  # review refused the others
        rerun = self.rerun(self.file, proposal.text)
        self.event("rerun", candidate=proposal.index + 1, status=rerun.status)
        return rerun

    def observe(self, proposal: Proposal, rerun: DebugRun) -> None:
        result = self.result
        if not rerun.failed:
            assert proposal.text is not None
            result.fixed, result.rerun, result.diff, result.new_text, result.script = (
                True, rerun, proposal.diff, proposal.text, self.file)
            if proposal.index > 0:
                result.explanation = proposal.explanation or result.explanation
                result.quotes_evidence = _quotes(result.explanation, result.run)
            return
        if result.rerun is None:
            result.rerun = rerun
        result.fixed = False

    def judge(self, proposal: Proposal, rerun: DebugRun) -> Verdict:
        return Verdict.AGAIN if rerun.failed else Verdict.DONE


class _Rerun:
    """The script rerun on the copy with one file changed, the copy put back after (timed: ``rerun_s``)."""

    def __init__(self, box: ProjectSandbox, cell: str, originals: dict[str, str], timings: dict[str, float]) -> None:
        self.box, self.cell, self.originals, self.timings = box, cell, originals, timings

    def __call__(self, file: str, text: str) -> DebugRun:
        self.box.write({file: text})
        start = time.monotonic()
        rerun = _read_debug_run(self.box.run_cell(self.cell, "rerun the script", timeout=60.0))
        self.timings["rerun_s"] += time.monotonic() - start
        self.box.write({file: self.originals[file]})
        return rerun


def _fix_message(result: DebugResult) -> str:
    if not result.diff:
        return "the model proposed no usable fix"
    if result.fixed:
        return "the proposed fix makes the script run without the failure"
    if result.fixed is False:
        return "no proposed fix made the script run cleanly"
    return "a fix is proposed (not run; use --fix to check it)"


def _changed_values(run: DebugRun) -> list[str]:
    out = []
    for e in (run.head + run.tail)[-8:]:
        if e["vars"]:
            out.append(f"{e['file']}:{e['line']} " + ", ".join(f"{k}={v}" for k, v in e["vars"].items()))
    return out


def format_debug(result: DebugResult, *, color: bool = False) -> str:
    """The terminal view: outcome, failing frame with source and values, callers, trace tail, explanation, diff."""
    run = result.run

    def bold(s: str) -> str:
        return f"\x1b[1m{s}\x1b[0m" if color else s

    out = [bold(f"debug {result.script}: {run.status}") + (f" - {run.message}" if run.message else "")]
    if not run.failed:
        out.append(f"ran {run.lines_run} lines of your code without an error")
        return "\n".join(out)
    if run.stdout.strip():
        out.append(bold("output:"))
        out += ["    " + line for line in run.stdout.rstrip().splitlines()[-10:]]
    if run.spin:
        s = run.spin
        out.append(f"spins in {s['function']} ({s['file']} lines {', '.join(map(str, s['lines'])) or s['line']})")
        if s["stays"]:
            out.append("  stays:   " + ", ".join(f"{k}={v}" for k, v in s["stays"].items()))
        if s["changes"]:
            out.append("  changes: " + ", ".join(f"{k}={v}" for k, v in s["changes"].items()))
    if run.hot_lines:
        out.append("hot lines: " + ", ".join(f"{f}:{n} x{c}" for f, n, c in run.hot_lines[:4]))
    for i, f in enumerate(reversed(run.frames)):
        label = "failing frame" if i == 0 else "called from  "
        out.append(f"{bold(label)} {f['function']} at {f['file']}:{f['line']}")
        if f.get("code"):
            out.append(f"  > {f['line']:>4} | {f['code']}")
        if f["locals"]:
            out.append("    " + ", ".join(f"{k}={v}" for k, v in f["locals"].items()))
    changed = _changed_values(run)
    if changed:
        out.append(bold("values that changed last:"))
        out += ["    " + c for c in changed]
    if result.explanation:
        out.append(bold("root cause (model):"))
        out.append(result.explanation)
    if result.diff:
        out.append(bold("proposed fix:"))
        out.append(result.diff.rstrip())
    if result.fixed is not None:
        out.append(bold("rerun: ") + ("the failure is gone" if result.fixed else
                                      f"still failing ({result.rerun.message if result.rerun else 'no rerun'})"))
    for w in result.written:
        out.append(f"wrote {w['path']} (backup: {w['backup']})")
    if result.message and result.message not in (run.message,):
        out.append(result.message)
    return "\n".join(out)
