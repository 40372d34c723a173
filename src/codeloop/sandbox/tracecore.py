"""The pieces every line tracer of codeloop shares: bounded values, a frame's locals, what a line changed.

Tracers that run code *inside the sandbox* build on :class:`LineRecorder`: the cell tracer of
:mod:`codeloop.sandbox.tracing` (evals' trace mode, ``codeloop fix``) and the monitor of
``codeloop debug`` (:mod:`codeloop.workflows.debug_monitor`). The sandboxed worker runs isolated
(``-I``) in a jail where codeloop cannot be imported, so this module is shipped there as source
(:func:`source`): it must stay stdlib-only, import nothing from codeloop, and have no
``from __future__`` import (its text is pasted after another file's). Each recorder keeps the
first ``head`` events and the last ``tail`` ones (and counts all of them), each value cut to
``max_repr`` characters, so a huge value or an endless loop cannot flood the host.
"""

import collections
import reprlib
import types
from typing import Any


class LineRecorder:
    """The bounded record of one traced run: call, line, return and exception events of user frames.

    An event is a dict: ``line`` and ``fn`` (after the caller's ``where`` keys, e.g. ``file``), and
    one of ``call`` (the arguments), ``vars`` (the locals the line changed), ``ret`` or ``exc``.
    A line's event is written when the frame moves on (the next line, a return or an exception), so
    it carries the values the line set. Locals: the first ``scan`` names of a frame, at most
    ``max_vars`` of them kept (all when None), names with dunders, callables and modules left out.
    """

    def __init__(self, *, max_repr: int, head: int, tail: int, scan: int = 32, max_vars: int | None = None) -> None:
        self.shorten = reprlib.Repr()
        self.shorten.maxstring = self.shorten.maxother = max_repr
        self.shorten.maxlist = self.shorten.maxtuple = self.shorten.maxset = self.shorten.maxdict = 8
        self.shorten.maxlevel = 3
        self.keep_head = head
        self.scan = scan
        self.max_vars = max_vars
        self.head: list[dict[str, Any]] = []
        self.tail: collections.deque[dict[str, Any]] = collections.deque(maxlen=tail)
        self.events = 0
        self.snapshots: dict[int, dict[str, str]] = {}
        self.last_line: dict[int, int] = {}

    def repr(self, value: object) -> str:
        """``value``'s repr, bounded; never raises (a broken ``__repr__`` reads ``<unrepresentable>``)."""
        try:
            return self.shorten.repr(value)
        except Exception:
            return "<unrepresentable>"

    def data_locals(self, frame: types.FrameType) -> dict[str, str]:
        """The frame's data variables, bounded in number and size."""
        out = {}
        for name, value in list(frame.f_locals.items())[: self.scan]:
            if name.startswith("__") or callable(value) or isinstance(value, types.ModuleType):
                continue
            out[name] = self.repr(value)
            if self.max_vars is not None and len(out) >= self.max_vars:
                break
        return out

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        if len(self.head) < self.keep_head:
            self.head.append(event)
        else:
            self.tail.append(event)

    def changed(self, frame: types.FrameType) -> dict[str, str]:
        """The locals whose value differs from the frame's last snapshot (and take a new snapshot)."""
        now = self.data_locals(frame)
        before = self.snapshots.get(id(frame), {})
        self.snapshots[id(frame)] = now
        return {k: v for k, v in now.items() if before.get(k) != v}

    def call(self, frame: types.FrameType, where: dict[str, Any]) -> None:
        """A traced frame starts: record its arguments."""
        self.snapshots[id(frame)] = self.data_locals(frame)
        self.add({**where, "line": frame.f_lineno, "fn": frame.f_code.co_name, "call": dict(self.snapshots[id(frame)])})

    def line(self, frame: types.FrameType, where: dict[str, Any]) -> None:
        """The frame reached a new line: record the line it left, with what that line changed."""
        key = id(frame)
        if key in self.last_line:
            self.add({**where, "line": self.last_line[key], "fn": frame.f_code.co_name, "vars": self.changed(frame)})
        self.last_line[key] = frame.f_lineno

    def returned(self, frame: types.FrameType, value: object, where: dict[str, Any]) -> None:
        """The frame returns ``value`` (or an exception leaves it): record its last line, forget the frame."""
        key = id(frame)
        if key in self.last_line:
            self.add({**where, "line": self.last_line.pop(key), "fn": frame.f_code.co_name, "vars": self.changed(frame),
                      "ret": self.repr(value)})
        self.snapshots.pop(key, None)

    def raised(self, frame: types.FrameType, name: str, where: dict[str, Any]) -> None:
        """The frame's current line raised ``name``: record that line now (the return that follows is the exception leaving)."""
        self.last_line.pop(id(frame), None)
        self.add({**where, "line": frame.f_lineno, "fn": frame.f_code.co_name, "vars": self.changed(frame), "exc": name})


def exception_name(arg: Any) -> str:
    """The exception's class name from the ``arg`` of a tracer's ``exception`` event."""
    return getattr(exception_type(arg), "__name__", "?")


def exception_type(arg: Any) -> Any:
    """The exception's class from the ``arg`` of a tracer's ``exception`` event."""
    return arg[0] if isinstance(arg, tuple) else type(arg)


def source() -> str:
    """This module's text, to run inside the sandbox where codeloop cannot be imported (host side)."""
    with open(__file__, encoding="utf-8") as f:
        return f.read()
