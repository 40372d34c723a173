"""The result of an agent run: task, steps, answer, usage and timings; JSON round-trippable.

Everything here is plain data so a run can be printed as JSON, stored in the history and
turned back into objects for ``history show``, notebook export and ``chat --resume``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from codeloop.sandbox.result import ErrorInfo, RunResult, RunStatus

__all__ = ["AgentResult", "CellOutcome", "Figure", "Step", "TaskStatus", "TaskTimings", "TaskUsage"]


class TaskStatus(StrEnum):
    """How a run ended. Only ``ANSWERED`` carries an answer the loop stands behind."""

    ANSWERED = "answered"
    MAX_STEPS = "max_steps"
    MAX_TOKENS = "max_tokens"
    TIMEOUT = "timeout"
    ABORTED = "aborted"  # the model or the sandbox itself failed; see ``error``
    INTERRUPTED = "interrupted"  # Ctrl-C
    NO_ANSWER = "no_answer"  # the model replied with nothing usable and no output backs an answer


@dataclass
class TaskUsage:
    """Token counts summed over every model call of a run."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: TaskUsage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "calls": self.calls,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskUsage:
        return cls(int(d.get("prompt_tokens", 0)), int(d.get("completion_tokens", 0)), int(d.get("calls", 0)))


@dataclass
class TaskTimings:
    """Wall-clock seconds: the whole run, time spent in the model, time spent running cells."""

    total_s: float = 0.0
    model_s: float = 0.0
    sandbox_s: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "total_s": round(self.total_s, 3),
            "model_s": round(self.model_s, 3),
            "sandbox_s": round(self.sandbox_s, 3),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskTimings:
        return cls(float(d.get("total_s", 0.0)), float(d.get("model_s", 0.0)), float(d.get("sandbox_s", 0.0)))


@dataclass
class Figure:
    """A PNG a cell produced: the bytes while in memory, the path once saved next to the history."""

    png: bytes | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Figure:
        return cls(png=None, path=d.get("path"))


@dataclass
class CellOutcome(RunResult):
    """What running one cell gave: the sandbox's :class:`RunResult`, plus what the loop probed.

    When a cell showed nothing, the loop reads the variable it assigned last: its name and repr
    are ``probed_name`` and ``probed_value``. The figures' bytes travel on the :class:`Step`
    (as :class:`Figure`), so the JSON form leaves them out.
    """

    probed_name: str | None = None
    probed_value: str | None = None

    def __post_init__(self) -> None:
        # Plain data (a stored run, a test) may give the status as text and the error as a dict.
        self.status = RunStatus(self.status)
        if isinstance(self.error, dict):
            self.error = _error_info(self.error)

    @classmethod
    def of(cls, result: RunResult) -> CellOutcome:
        """The outcome of a cell the sandbox ran (no copy of its fields: the same values)."""
        return cls(**{f.name: getattr(result, f.name) for f in fields(RunResult)})

    def to_dict(self, *, figure_paths: list[str] | None = None) -> dict[str, Any]:
        data = super().to_dict(figure_paths=figure_paths)
        if figure_paths is None:
            del data["figures"]  # kept on the step, as files next to the history
        data["probed_name"], data["probed_value"] = self.probed_name, self.probed_value
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellOutcome:
        return cls(
            status=RunStatus(d["status"]),
            stdout=d.get("stdout") or "",
            stderr=d.get("stderr") or "",
            value=d.get("value"),
            error=_error_info(d["error"]) if d.get("error") else None,
            files=list(d.get("files") or []),
            duration=float(d.get("duration") or 0.0),
            restarted=bool(d.get("restarted", False)),
            truncated=bool(d.get("truncated", False)),
            notes=list(d.get("notes") or []),
            cell=int(d.get("cell") or 0),
            probed_name=d.get("probed_name"),
            probed_value=d.get("probed_value"),
        )


def _error_info(d: dict[str, Any]) -> ErrorInfo:
    return ErrorInfo(str(d.get("ename", "")), str(d.get("evalue", "")), str(d.get("traceback", "")))


@dataclass
class Step:
    """One model reply and, when it held code, the cell it ran and what the model was shown."""

    index: int
    model_text: str
    code: str | None = None
    outcome: CellOutcome | None = None
    observation: str | None = None  # the message the model saw about this cell
    figures: list[Figure] = field(default_factory=list)
    candidates: int = 1  # programs sampled for this step (self-consistency); 1 = no voting
    agreement: int = 1  # how many of them agreed with the chosen one

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "model_text": self.model_text,
            "code": self.code,
            "result": self.outcome.to_dict() if self.outcome else None,
            "observation": self.observation,
            "figures": [f.to_dict() for f in self.figures],
            "candidates": self.candidates,
            "agreement": self.agreement,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        return cls(
            index=int(d["index"]),
            model_text=d.get("model_text") or "",
            code=d.get("code"),
            outcome=CellOutcome.from_dict(d["result"]) if d.get("result") else None,
            observation=d.get("observation"),
            figures=[Figure.from_dict(f) for f in d.get("figures") or []],
            candidates=int(d.get("candidates", 1)),
            agreement=int(d.get("agreement", 1)),
        )


@dataclass
class AgentResult:
    """A whole run: the task, every step, the final answer and what it cost.

    ``answer_source`` is ``"model"`` when the model's own words were kept and ``"output"`` when
    they contradicted the executed output and the loop answered from that output instead.
    """

    task: str
    model: str = ""
    status: TaskStatus = TaskStatus.ANSWERED
    answer: str | None = None
    answer_source: str | None = None
    evidence: str | None = None  # the executed output the answer rests on
    steps: list[Step] = field(default_factory=list)
    usage: TaskUsage = field(default_factory=TaskUsage)
    timings: TaskTimings = field(default_factory=TaskTimings)
    error: str | None = None
    id: int | None = None  # history id, once stored

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.ANSWERED and self.answer is not None

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.steps for f in s.figures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "model": self.model,
            "status": self.status.value,
            "ok": self.ok,
            "answer": self.answer,
            "answer_source": self.answer_source,
            "evidence": self.evidence,
            "error": self.error,
            "steps": [s.to_dict() for s in self.steps],
            "usage": self.usage.to_dict(),
            "timings": self.timings.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentResult:
        return cls(
            task=d["task"],
            model=d.get("model") or "",
            status=TaskStatus(d.get("status", "answered")),
            answer=d.get("answer"),
            answer_source=d.get("answer_source"),
            evidence=d.get("evidence"),
            steps=[Step.from_dict(s) for s in d.get("steps") or []],
            usage=TaskUsage.from_dict(d.get("usage") or {}),
            timings=TaskTimings.from_dict(d.get("timings") or {}),
            error=d.get("error"),
            id=d.get("id"),
        )
