"""The session contract as its consumers see it: run a cell, get a :class:`RunResult`, close.

:class:`~codeloop.sandbox.Sandbox` satisfies it. The loop engine, the agent, the eval harness
and the workflows type against :class:`Session` (never against the Sandbox class), so a test
can drive them with any object of the same shape, and :data:`SessionFactory` is how a
caller hands out fresh sessions (each one a context manager, closed on leaving).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from codeloop.sandbox.result import RunResult

__all__ = ["OnOutput", "Session", "SessionFactory"]

#: receives output while a cell runs: ``(stream, text)`` with stream "stdout" or "stderr"
OnOutput = Callable[[str, str], None]


class Session(Protocol):
    """One stateful Python session: cells share variables, imports and files until ``close``."""

    def run(self, code: str, *, timeout: float | None = None, on_output: OnOutput | None = None) -> RunResult:
        """Run one cell (at most ``timeout`` seconds); the user's code failing is a result, not an exception."""
        ...

    def close(self) -> None:
        """End the session and free its worker."""
        ...


#: opens a fresh session, e.g. ``with open_session() as session: session.run("1 + 1")``
SessionFactory = Callable[[], AbstractContextManager[Session]]
