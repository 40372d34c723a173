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
loop cannot flood the host. It writes one JSON record to the path in the config. Stdlib only.
"""

from __future__ import annotations

import collections
import json
import os
import reprlib
import runpy
import signal
import sys
import time
import types
from typing import Any


def main(config_path: str) -> int:
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    script = os.path.realpath(cfg["script"])
    root = os.path.realpath(cfg["root"])
    limits = cfg["limits"]
    out_path = cfg["output"]
    own = os.path.realpath(__file__)
    shorten = reprlib.Repr()
    shorten.maxstring = shorten.maxother = limits["max_repr"]
    shorten.maxlist = shorten.maxtuple = shorten.maxset = shorten.maxdict = 8
    shorten.maxlevel = 3
    head: list[dict[str, Any]] = []
    tail: collections.deque[dict[str, Any]] = collections.deque(maxlen=limits["tail"])
    hits: collections.Counter[tuple[str, int]] = collections.Counter()
    state = {"lines": 0, "events": 0}
    snapshots: dict[int, dict[str, str]] = {}
    last_line: dict[int, int] = {}
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

    def safe_repr(value: object) -> str:
        try:
            return shorten.repr(value)
        except Exception:
            return "<unrepresentable>"

    def data_locals(frame: types.FrameType) -> dict[str, str]:
        out = {}
        for name, value in list(frame.f_locals.items())[: limits["max_vars"] * 2]:
            if name.startswith("__") or callable(value) or isinstance(value, types.ModuleType):
                continue
            out[name] = safe_repr(value)
            if len(out) >= limits["max_vars"]:
                break
        return out

    def add(event: dict[str, Any]) -> None:
        state["events"] += 1
        if len(head) < limits["head"]:
            head.append(event)
        else:
            tail.append(event)

    def changed(frame: types.FrameType) -> dict[str, str]:
        now = data_locals(frame)
        before = snapshots.get(id(frame), {})
        snapshots[id(frame)] = now
        return {k: v for k, v in now.items() if before.get(k) != v}

    def local_tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        key = id(frame)
        name = rel(frame.f_code.co_filename) or "?"
        if event == "line":
            state["lines"] += 1
            hits[(name, frame.f_lineno)] += 1
            if key in last_line:
                add({"file": name, "line": last_line[key], "fn": frame.f_code.co_name, "vars": changed(frame)})
            last_line[key] = frame.f_lineno
        elif event == "return":
            if key in last_line:
                add({"file": name, "line": last_line.pop(key), "fn": frame.f_code.co_name, "vars": changed(frame),
                     "ret": safe_repr(arg)})
            snapshots.pop(key, None)
        elif event == "exception":
            last_line.pop(key, None)
            exc_type = arg[0] if isinstance(arg, tuple) else type(arg)
            add({"file": name, "line": frame.f_lineno, "fn": frame.f_code.co_name, "vars": changed(frame),
                 "exc": getattr(exc_type, "__name__", "?")})
        return local_tracer

    def global_tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event != "call" or (code.co_name.startswith("<") and code.co_name != "<module>"):
            return None
        name = rel(code.co_filename)
        if name is None:
            return None
        snapshots[id(frame)] = data_locals(frame)
        add({"file": name, "line": frame.f_lineno, "fn": code.co_name, "call": dict(snapshots[id(frame)])})
        return local_tracer

    def user_frames(frames: list[tuple[types.FrameType, int]]) -> list[dict[str, Any]]:
        out = []
        for frame, lineno in frames:
            name = rel(frame.f_code.co_filename)
            if name is None:
                continue
            out.append({"file": name, "line": lineno, "function": frame.f_code.co_name, "locals": data_locals(frame)})
        return out[-limits["max_frames"]:]

    def finish() -> None:
        sys.settrace(None)
        record.update(
            head=head,
            tail=list(tail),
            events=state["events"],
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
            recent = [e for e in tail if e["fn"] == spin["function"] and e["file"] == spin["file"]]
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
        record["exception"] = {"type": type(e).__name__, "message": safe_repr(str(e))[1:-1][:500]}
        record["message"] = f"{type(e).__name__}: {record['exception']['message']}"
        record["frames"] = user_frames(frames)
    signal.setitimer(signal.ITIMER_REAL, 0)
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
