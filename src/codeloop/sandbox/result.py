"""What one cell run returns: a status enum, the error, and the RunResult dataclass."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = ["ErrorInfo", "OutputChunk", "RunResult", "RunStatus"]


class RunStatus(StrEnum):
    """How a cell ended. A StrEnum, so ``result.status == "ok"`` works."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASHED = "crashed"
    OUTPUT_LIMIT = "output_limit"


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised by the user's code, with a traceback showing the user's source lines."""

    ename: str
    evalue: str
    traceback: str

    def to_dict(self) -> dict[str, str]:
        return {"ename": self.ename, "evalue": self.evalue, "traceback": self.traceback}


class OutputChunk(NamedTuple):
    """A piece of output delivered while a cell runs: ``stream`` is "stdout" or "stderr"."""

    stream: str
    text: str


@dataclass
class RunResult:
    """Everything one ``Sandbox.run`` produced (see docs/architecture.md)."""

    status: RunStatus
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: ErrorInfo | None = None
    figures: list[bytes] = field(default_factory=list)
    #: paths relative to the session directory of files this cell created or changed; bytes of a
    #: name that are not UTF-8 are shown as ``\\xNN``, so every entry prints and encodes safely
    files: list[str] = field(default_factory=list)
    duration: float = 0.0
    #: True when the worker was replaced: variables, imports and definitions are gone
    restarted: bool = False
    #: True when stdout or stderr lost bytes to the output cap (the text says where)
    truncated: bool = False
    #: plain-language remarks: why the state was lost, what was left out
    notes: list[str] = field(default_factory=list)
    #: the cell number (traceback lines name it ``<cell N>``)
    cell: int = 0

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    def to_dict(self, *, figure_paths: list[str] | None = None) -> dict[str, Any]:
        """JSON-ready form; figures as base64 PNG, or as saved paths when given."""
        return {
            "status": str(self.status),
            "stdout": self.stdout,
            "stderr": self.stderr,
            "value": self.value,
            "error": self.error.to_dict() if self.error else None,
            "figures": figure_paths
            if figure_paths is not None
            else [base64.b64encode(png).decode("ascii") for png in self.figures],
            "files": list(self.files),
            "duration": round(self.duration, 6),
            "restarted": self.restarted,
            "truncated": self.truncated,
            "notes": list(self.notes),
            "cell": self.cell,
        }
