"""The errors of running on a cluster (part of codeloop's one hierarchy)."""

from __future__ import annotations

from codeloop.errors import CodeloopError

__all__ = ["ScaleError"]


class ScaleError(CodeloopError):
    """The cluster cannot be reached or used: not installed, unreachable, refused, out of workers."""
