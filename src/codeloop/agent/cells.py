"""The boundary to the sandbox: run one cell and copy its RunResult into plain result data.

The agent codes against the sandbox contract (DESIGN.md §2) through the small protocols here,
so tests can also drive it with any object that has the same shape.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from typing import Any, Protocol

from codeloop.agent.result import CellOutcome, Figure

__all__ = ["SessionLike", "last_assigned_name", "outcome_from_run"]


class SessionLike(Protocol):
    """What the loop needs from a sandbox session: run code (streaming its output), keep state, close."""

    def run(
        self, code: str, *, timeout: float | None = None, on_output: Callable[[str, str], None] | None = None
    ) -> Any: ...

    def close(self) -> None: ...


def _file_name(f: Any) -> str:
    """A readable name for an entry of ``RunResult.files`` (a path, a str, or an object with ``.path``)."""
    raw = getattr(f, "path", None) or getattr(f, "name", None) or f
    return os.fspath(raw) if isinstance(raw, str | os.PathLike) else str(raw)


def outcome_from_run(result: Any) -> tuple[CellOutcome, list[Figure]]:
    """Copy a sandbox RunResult into a CellOutcome plus its figures (kept as PNG bytes)."""
    err = getattr(result, "error", None)
    error = None
    if err is not None:
        error = {
            "ename": str(getattr(err, "ename", type(err).__name__)),
            "evalue": str(getattr(err, "evalue", "")),
            "traceback": str(getattr(err, "traceback", "")),
        }
    status = getattr(result, "status", "ok")
    outcome = CellOutcome(
        status=str(getattr(status, "value", status)),
        stdout=getattr(result, "stdout", "") or "",
        stderr=getattr(result, "stderr", "") or "",
        value=getattr(result, "value", None),
        error=error,
        files=[_file_name(f) for f in getattr(result, "files", None) or []],
        duration=float(getattr(result, "duration", 0.0) or 0.0),
        notes=[str(n) for n in getattr(result, "notes", None) or []],
    )
    figures = [Figure(png=bytes(png)) for png in getattr(result, "figures", None) or []]
    return outcome, figures


def last_assigned_name(code: str) -> str | None:
    """The variable a cell assigned last, when that is its final statement (``result = ...``).

    Used when a cell printed nothing: reading that variable gives the model its value without
    another model round trip.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    if not tree.body:
        return None
    last = tree.body[-1]
    target: ast.expr | None = None
    if isinstance(last, ast.Assign) and len(last.targets) == 1:
        target = last.targets[0]
    elif isinstance(last, ast.AugAssign | ast.AnnAssign):
        target = last.target
    return target.id if isinstance(target, ast.Name) else None
