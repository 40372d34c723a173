"""The one exception hierarchy of codeloop.

Third-party errors are translated at the boundary (``raise CodeloopError(...) from e``) so
callers catch one family of types and always get an actionable message.
"""

from __future__ import annotations

__all__ = [
    "CodeloopError",
    "ConfigError",
    "HistoryError",
    "ModelError",
    "SandboxError",
    "SandboxUnavailable",
]


class CodeloopError(Exception):
    """Base class of every error codeloop raises on purpose."""


class ConfigError(CodeloopError):
    """Bad configuration: an unreadable config file, an unknown model alias, a bad value."""


class SandboxError(CodeloopError):
    """The sandbox itself failed (not the user's code: that is a RunResult with status 'error')."""


class SandboxUnavailable(SandboxError):
    """A required isolation layer cannot be applied on this host."""


class ModelError(CodeloopError):
    """A model backend failed: server down, timeout, missing model file, bad response."""


class HistoryError(CodeloopError):
    """The history database is corrupt, locked or unreadable."""
