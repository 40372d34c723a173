"""The harness's view of a sandbox session, and the factory that opens fresh ones.

Typing against this small protocol (not the Sandbox class) keeps the harness honest about what
it needs from the sandbox: run a cell with a timeout, and read status, value, error and output.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["CellResult", "Session", "SessionFactory", "error_summary", "sandbox_factory"]


class CellResult(Protocol):
    """What the harness reads of a sandbox RunResult (DESIGN.md §2)."""

    @property
    def status(self) -> str: ...
    @property
    def value(self) -> str | None: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def error(self) -> Any: ...


class Session(Protocol):
    """One stateful sandbox session."""

    def run(self, code: str, *, timeout: float | None = None) -> CellResult: ...


SessionFactory = Callable[[], AbstractContextManager[Session]]


def sandbox_factory(*, timeout: float, memory_mb: int | None = None) -> SessionFactory:
    """A factory of fresh ``codeloop.Sandbox`` sessions without network; each call is a new session."""
    from codeloop.sandbox import Sandbox

    def open_session() -> AbstractContextManager[Session]:
        kwargs: dict[str, Any] = {"timeout": timeout, "network": False}
        if memory_mb is not None:
            kwargs["memory_mb"] = memory_mb
        session: AbstractContextManager[Session] = Sandbox(**kwargs)
        return session

    return open_session


def error_summary(result: CellResult, limit: int = 300) -> str:
    """``"ZeroDivisionError: division by zero"`` for an error cell, bounded; '' when there is none."""
    error = result.error
    if error is None:
        return ""
    ename = str(getattr(error, "ename", "") or type(error).__name__)
    evalue = str(getattr(error, "evalue", "") or "")
    text = f"{ename}: {evalue}" if evalue else ename
    return text if len(text) <= limit else text[: limit - 3] + "..."
