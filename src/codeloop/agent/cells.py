"""The boundary to the sandbox: run one cell's result into the agent's outcome and figures.

The agent codes against the sandbox's :class:`~codeloop.sandbox.contract.Session` protocol,
so tests can also drive it with any object that has the same shape.
"""

from __future__ import annotations

import ast

from codeloop.agent.result import CellOutcome, Figure
from codeloop.sandbox.result import RunResult

__all__ = ["last_assigned_name", "outcome_from_run"]


def outcome_from_run(result: RunResult) -> tuple[CellOutcome, list[Figure]]:
    """A sandbox RunResult as the agent keeps it: the outcome, and its figures (PNG bytes) for the step."""
    outcome = CellOutcome.of(result)
    return outcome, [Figure(png=bytes(png)) for png in result.figures]


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
