"""The sandbox: stateful Python sessions in separate worker processes (see docs/architecture.md).

``Sandbox`` is the session; ``RunResult``, ``ErrorInfo`` and ``RunStatus`` describe a run.
Consumers type against the :class:`Session` protocol (:mod:`codeloop.sandbox.contract`). The
launch seam for isolation layers is :mod:`codeloop.sandbox.launcher`.
"""

from __future__ import annotations

from codeloop.sandbox.contract import OnOutput, Session, SessionFactory
from codeloop.sandbox.result import ErrorInfo, OutputChunk, RunResult, RunStatus
from codeloop.sandbox.session import Sandbox

__all__ = [
    "ErrorInfo",
    "OnOutput",
    "OutputChunk",
    "RunResult",
    "RunStatus",
    "Sandbox",
    "Session",
    "SessionFactory",
]
