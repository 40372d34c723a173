"""The sandbox: stateful Python sessions in separate worker processes (DESIGN.md section 2).

``Sandbox`` is the session; ``RunResult``, ``ErrorInfo`` and ``RunStatus`` describe a run. The
launch seam for isolation layers is :mod:`codeloop.sandbox.launcher`.
"""

from __future__ import annotations

from codeloop.sandbox.result import ErrorInfo, OutputChunk, RunResult, RunStatus
from codeloop.sandbox.session import Sandbox

__all__ = ["ErrorInfo", "OutputChunk", "RunResult", "RunStatus", "Sandbox"]
