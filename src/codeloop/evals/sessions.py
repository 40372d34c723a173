"""The harness's factory of fresh sandbox sessions, and a one-line summary of a cell's error.

The session contract itself (:class:`~codeloop.sandbox.contract.Session`, ``SessionFactory``)
is the sandbox's; it is re-exported here for the harness's modules.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from codeloop.sandbox.contract import Session, SessionFactory
from codeloop.sandbox.result import RunResult

__all__ = ["Session", "SessionFactory", "error_summary", "sandbox_factory"]


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


def error_summary(result: RunResult, limit: int = 300) -> str:
    """``"ZeroDivisionError: division by zero"`` for an error cell, bounded; '' when there is none."""
    error = result.error
    if error is None:
        return ""
    ename = str(getattr(error, "ename", "") or type(error).__name__)
    evalue = str(getattr(error, "evalue", "") or "")
    text = f"{ename}: {evalue}" if evalue else ename
    return text if len(text) <= limit else text[: limit - 3] + "..."
