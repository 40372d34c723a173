"""The monitor ``codeloop debug`` runs a script under, inside the sandbox (never on the host).

Started as ``python debug_monitor.py CONFIG.json`` in the copy of the user's directory. It runs the
script as ``__main__`` with its arguments under ``sys.settrace`` (this package supports Python
3.11, which has no ``sys.monitoring``), recording only frames of the user's own files:

* the lines executed, each with the local variables it changed (the first ``head`` and the last
  ``tail`` events, and how many ran in between) and how often each line ran;
* on an uncaught exception, the failing frame and its callers with their local variables;
* on a hang, an alarm at the time limit records where it spins: the stack, the hot lines, and which
  variables of the spinning frame changed over the last events and which stayed the same.

Everything is bounded (events kept, repr length, variables per frame), so a huge value or an endless
loop cannot flood the host. It writes one JSON record to the path in the config.

The sandboxed worker cannot import codeloop, so the monitor goes there as one standalone script,
:func:`script_source`: this file with the stdlib-only :mod:`codeloop.sandbox.tracecore` (the
bounded values, locals and line events it shares with the cell tracer) pasted in place of its import.
"""

from __future__ import annotations

import collections
import json
import os
import runpy
import signal
import sys
import time
import types
from typing import Any

from codeloop.sandbox.tracecore import LineRecorder, exception_name  # script_source() pastes the module here


def main(config_path: str) -> int:
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    script = os.path.realpath(cfg["script"])
    root = os.path.realpath(cfg["root"])
    limits = cfg["limits"]
    out_path = cfg["output"]
    own = os.path.realpath(__file__)
    rec = LineRecorder(max_repr=limits["max_repr"], head=limits["head"], tail=limits["tail"], scan=limits["max_vars"] * 2,
                       max_vars=limits["max_vars"])
    hits: collections.Counter[tuple[str, int]] = collections.Counter()
    state = {"lines": 0}
    user_cache: dict[str, str | None] = {}
    record: dict[str, Any] = {"status": "ok", "exit_code": 0}
    started = time.monotonic()

    def rel(filename: str) -> str | None:
        """The file's path relative to the root when it is the user's own file, else None."""
        if filename not in user_cache:
            real = os.path.realpath(filename) if not filename.startswith("<") else ""
            ok = real.startswith(root + os.sep) and real != own and not real.startswith(os.path.dirname(own) + os.sep)
            user_cache[filename] = os.path.relpath(real, root) if ok else None
        return user_cache[filename]

    def local_tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        name = rel(frame.f_code.co_filename) or "?"
        if event == "line":
            state["lines"] += 1
            hits[(name, frame.f_lineno)] += 1
            rec.line(frame, {"file": name})
        elif event == "return":
            rec.returned(frame, arg, {"file": name})
        elif event == "exception":
            rec.raised(frame, exception_name(arg), {"file": name})
        return local_tracer

    def global_tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event != "call" or (code.co_name.startswith("<") and code.co_name != "<module>"):
            return None
        name = rel(code.co_filename)
        if name is None:
            return None
        rec.call(frame, {"file": name})
        return local_tracer

    def user_frames(frames: list[tuple[types.FrameType, int]]) -> list[dict[str, Any]]:
        out = []
        for frame, lineno in frames:
            name = rel(frame.f_code.co_filename)
            if name is None:
                continue
            out.append({"file": name, "line": lineno, "function": frame.f_code.co_name, "locals": rec.data_locals(frame)})
        return out[-limits["max_frames"]:]

    def finish() -> None:
        sys.settrace(None)
        record.update(
            head=rec.head,
            tail=list(rec.tail),
            events=rec.events,
            lines_run=state["lines"],
            hot_lines=[[f, n, c] for (f, n), c in hits.most_common(8)],
            duration=round(time.monotonic() - started, 4),
        )
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(record, f)

    def on_alarm(signum: int, frame: types.FrameType | None) -> None:
        sys.settrace(None)
        stack = []
        f = frame
        while f is not None:
            stack.append((f, f.f_lineno))
            f = f.f_back
        frames = user_frames(list(reversed(stack)))
        record["status"] = "timeout"
        record["exit_code"] = None
        record["message"] = f"still running after {limits['timeout']:g} s"
        record["frames"] = frames
        if frames:
            spin = frames[-1]
            recent = [e for e in rec.tail if e["fn"] == spin["function"] and e["file"] == spin["file"]]
            moved = {k for e in recent for k in e.get("vars", {})}
            record["spin"] = {
                "file": spin["file"], "function": spin["function"], "line": spin["line"],
                "lines": sorted({e["line"] for e in recent}),
                "stays": {k: v for k, v in spin["locals"].items() if k not in moved},
                "changes": {k: v for k, v in spin["locals"].items() if k in moved},
            }
        finish()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(124)

    sys.argv = [cfg["script"], *cfg["args"]]
    sys.path.insert(0, os.path.dirname(script))
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(limits["timeout"]))
    sys.settrace(global_tracer)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        sys.settrace(None)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        record["exit_code"] = code
        record["status"] = "ok" if code == 0 else "exit"
        if code != 0:
            record["message"] = f"exited with status {code}" + (f": {e.code}" if not isinstance(e.code, int | None) else "")
    except BaseException as e:
        sys.settrace(None)
        signal.setitimer(signal.ITIMER_REAL, 0)
        tb = e.__traceback__
        frames = []
        while tb is not None:
            frames.append((tb.tb_frame, tb.tb_lineno))
            tb = tb.tb_next
        record["status"] = "exception"
        record["exit_code"] = 1
        record["exception"] = {"type": type(e).__name__, "message": rec.repr(str(e))[1:-1][:500]}
        record["message"] = f"{type(e).__name__}: {record['exception']['message']}"
        record["frames"] = user_frames(frames)
    signal.setitimer(signal.ITIMER_REAL, 0)
    finish()
    return 0


def script_source() -> str:
    """The monitor as one standalone script (run as ``python SCRIPT CONFIG.json``): this file, with the
    source of :mod:`codeloop.sandbox.tracecore` in place of the line that imports it. Host side."""
    import ast

    from codeloop.sandbox import tracecore

    with open(__file__, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    spans = [(node.lineno, node.end_lineno or node.lineno) for node in ast.parse(text).body
             if isinstance(node, ast.ImportFrom) and node.module == tracecore.__name__]
    if len(spans) != 1:
        raise RuntimeError(f"the monitor should import {tracecore.__name__} once at its top level, not {len(spans)} times")
    first, last = spans[0]
    return "".join(lines[: first - 1]) + tracecore.source() + "".join(lines[last:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
