"""A bounded line tracer for code in the sandbox: the values of the variables line by line.

``trace_cell`` builds a cell that runs one call under ``sys.settrace`` inside the session and
evaluates to a JSON record of what ran: each executed line of the traced file with the locals it
changed, the call's result or exception, and counts of what was left out. The code it injects
(``_codeloop_trace``, with the source of :mod:`codeloop.sandbox.tracecore`, which it runs in a
namespace of its own) is stdlib-only and bounded in steps, events kept and repr length, so an
infinite loop or a huge value cannot flood the host. ``parse_trace`` and ``format_trace`` turn the
record back into text for a model, in the spirit of LDB (Zhong et al. 2024).
"""

from __future__ import annotations

import ast
import inspect
import json
from dataclasses import dataclass, field
from typing import Any

from codeloop.sandbox import tracecore

__all__ = ["Trace", "TraceError", "TraceEvent", "TraceLimits", "format_trace", "parse_trace", "trace_cell", "tracer_source"]


def _codeloop_trace(call: str, entry_point: str, limits: dict[str, int], core: str) -> str:  # pragma: no cover - runs in the sandbox
    """Run ``call`` with a line tracer on the file that defines ``entry_point``; return a JSON record.

    ``core`` is the source of :mod:`codeloop.sandbox.tracecore`, run in a namespace of its own so
    that none of its names land in the session's.
    """
    import json
    import sys
    import types
    import typing

    namespace = sys._getframe(1).f_globals
    target = namespace[entry_point]
    filename = getattr(getattr(target, "__code__", None), "co_filename", None)
    shared: dict[str, typing.Any] = {"__name__": "_codeloop_tracecore"}
    exec(compile(core, "<codeloop-tracecore>", "exec"), shared)
    rec = shared["LineRecorder"](max_repr=limits["max_repr"], head=limits["head"], tail=limits["tail"])
    exception_type = shared["exception_type"]
    state = {"steps": 0}
    here: dict[str, object] = {}  # the events name no file: one file is traced

    class Budget(BaseException):
        """Raised from the tracer to stop a run that exceeds the step budget."""

    def local_tracer(frame: types.FrameType, event: str, arg: typing.Any) -> typing.Any:
        if event == "line":
            state["steps"] += 1
            if state["steps"] > limits["max_steps"]:
                raise Budget()
            rec.line(frame, here)
        elif event == "return":
            rec.returned(frame, arg, here)
        elif event == "exception":
            exc_type = exception_type(arg)
            if exc_type not in (Budget, StopIteration, GeneratorExit):
                rec.raised(frame, getattr(exc_type, "__name__", "?"), here)
        return local_tracer

    def global_tracer(frame: types.FrameType, event: str, arg: typing.Any) -> typing.Any:
        code = frame.f_code
        # Comprehensions, generator expressions and lambdas run on their parent's line: skip the noise.
        if event != "call" or code.co_filename != filename or code.co_name.startswith("<"):
            return None
        rec.call(frame, here)
        return local_tracer

    outcome: dict[str, object] = {}
    code = compile(call, "<codeloop-trace-call>", "eval")
    sys.settrace(global_tracer)
    try:
        outcome["result"] = rec.repr(eval(code, namespace))
    except Budget:
        outcome["stopped"] = f"stopped after {limits['max_steps']} steps (an endless loop?)"
    except BaseException as e:  # the traced code's own failure is part of the record
        outcome["exception"] = f"{type(e).__name__}: {rec.repr(str(e))[1:-1]}"
    finally:
        sys.settrace(None)
    outcome.update(
        call=call,
        head=rec.head,
        tail=list(rec.tail),
        events=rec.events,
        steps=state["steps"],
        traced=filename is not None,
    )
    return json.dumps(outcome)


def tracer_source() -> str:
    """Code that defines ``_codeloop_trace`` and ``_CODELOOP_TRACECORE`` (its ``core`` argument), for a file shipped into the sandbox."""
    return f"{inspect.getsource(_codeloop_trace)}\n\n_CODELOOP_TRACECORE = {tracecore.source()!r}\n"


class TraceError(ValueError):
    """The trace record could not be read (the cell failed, or its value was cut short)."""


@dataclass(frozen=True)
class TraceLimits:
    """Bounds of one trace: events kept at the start and the end, steps before stopping, repr size."""

    head: int = 40
    tail: int = 30
    max_steps: int = 20_000
    max_repr: int = 60


@dataclass(frozen=True)
class TraceEvent:
    """One executed line (``vars``: the locals it changed), a call (``call``: the arguments) or a return."""

    line: int
    function: str
    vars: dict[str, str] = field(default_factory=dict)
    call_args: dict[str, str] | None = None
    returned: str | None = None
    exception: str | None = None


@dataclass(frozen=True)
class Trace:
    """The record of one traced call."""

    call: str
    head: list[TraceEvent]
    tail: list[TraceEvent]
    events: int
    steps: int
    result: str | None = None
    exception: str | None = None
    stopped: str | None = None

    @property
    def omitted(self) -> int:
        return self.events - len(self.head) - len(self.tail)


def trace_cell(call: str, entry_point: str, limits: TraceLimits | None = None) -> str:
    """A cell that traces ``call`` (e.g. ``"add(2, 3)"``) through the code that defines ``entry_point``.

    Run it in a session where that code already ran; its value is the JSON record ``parse_trace`` reads.
    """
    try:
        ast.parse(call, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not an expression: {call!r}") from e
    if not entry_point.isidentifier():
        raise ValueError(f"not a function name: {entry_point!r}")
    lim = limits or TraceLimits()
    bounds = {"head": lim.head, "tail": lim.tail, "max_steps": lim.max_steps, "max_repr": lim.max_repr}
    return (f"{inspect.getsource(_codeloop_trace)}\n"
            f"_codeloop_trace({call!r}, {entry_point!r}, {bounds!r}, {tracecore.source()!r})\n")


def _event(raw: dict[str, Any]) -> TraceEvent:
    return TraceEvent(
        line=int(raw["line"]),
        function=str(raw.get("fn", "?")),
        vars={str(k): str(v) for k, v in (raw.get("vars") or {}).items()},
        call_args=None if raw.get("call") is None else {str(k): str(v) for k, v in raw["call"].items()},
        returned=None if raw.get("ret") is None else str(raw["ret"]),
        exception=None if raw.get("exc") is None else str(raw["exc"]),
    )


def parse_trace(value: str | None) -> Trace:
    """Read the value of a ``trace_cell`` cell (the repr of a JSON string) back into a Trace."""
    if value is None:
        raise TraceError("the trace cell has no value")
    try:
        text = ast.literal_eval(value)
        data = json.loads(text)
        return Trace(
            call=str(data["call"]),
            head=[_event(e) for e in data["head"]],
            tail=[_event(e) for e in data["tail"]],
            events=int(data["events"]),
            steps=int(data["steps"]),
            result=data.get("result"),
            exception=data.get("exception"),
            stopped=data.get("stopped"),
        )
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError) as e:
        raise TraceError(f"unreadable trace record: {e}") from e


def _describe(event: TraceEvent, source_lines: list[str]) -> str:
    text = source_lines[event.line - 1].strip() if 0 < event.line <= len(source_lines) else ""
    if event.call_args is not None:
        args = ", ".join(f"{k}={v}" for k, v in event.call_args.items())
        return f"call {event.function}({args})"
    parts = [f"{k}={v}" for k, v in event.vars.items()]
    if event.returned is not None:
        parts.append(f"returns {event.returned}")
    if event.exception is not None:
        parts.append(f"raises {event.exception}")
    values = ("   # " + ", ".join(parts)) if parts else ""
    return f"line {event.line:<3} {text}{values}"


def format_trace(trace: Trace, source: str, max_chars: int = 4000) -> str:
    """The trace as text: each executed line of ``source`` with the values after it ran, bounded."""
    lines = source.splitlines()
    out = [f"Trace of {trace.call}:"]
    out += ["  " + _describe(e, lines) for e in trace.head]
    if trace.omitted > 0:
        out.append(f"  ... {trace.omitted} more lines ran here ...")
    out += ["  " + _describe(e, lines) for e in trace.tail]
    if trace.stopped:
        out.append(f"  {trace.stopped}")
    elif trace.exception is not None:
        out.append(f"  raised {trace.exception}")
    elif trace.result is not None:
        out.append(f"  result: {trace.result}")
    text = "\n".join(out)
    if len(text) > max_chars:
        keep = max_chars // 2
        text = text[:keep] + "\n  ... (trace cut) ...\n" + text[-keep:]
    return text
