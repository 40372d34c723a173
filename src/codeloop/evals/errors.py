"""Errors of the benchmark harness, all in the CodeloopError family.

They live here rather than in ``codeloop.errors`` because only the harness raises them; callers
that catch ``CodeloopError`` catch these too.
"""

from __future__ import annotations

from codeloop.errors import CodeloopError

__all__ = ["DatasetError", "EvalError", "EvalInputError"]


class EvalError(CodeloopError):
    """The benchmark harness failed (not a sample: a failing sample is a result, not an error)."""


class EvalInputError(EvalError):
    """Bad input from the user: a malformed samples file, an unknown task id, a bad ``--k``."""


class DatasetError(EvalError):
    """The benchmark's problems cannot be loaded (package missing, file unreadable)."""
