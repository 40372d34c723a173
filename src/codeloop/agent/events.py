"""Events the loop emits while it works, so faces can stream and the history can record as it goes.

A handler is any callable taking one event; it runs synchronously in the loop's thread, so it
should be quick (print, write a row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codeloop.agent.result import AgentResult, Step

__all__ = [
    "AgentEvent",
    "CellOutput",
    "CellStart",
    "EventHandler",
    "Finished",
    "ModelStart",
    "ModelText",
    "Notice",
    "StepDone",
    "fan_out",
]


@dataclass(frozen=True)
class ModelStart:
    """The model starts a reply for step ``step``."""

    step: int


@dataclass(frozen=True)
class ModelText:
    """A piece of the model's reply, as it streams (already cut after the first code block)."""

    text: str


@dataclass(frozen=True)
class CellStart:
    """A cell is about to run in the sandbox."""

    step: int
    code: str


@dataclass(frozen=True)
class CellOutput:
    """Output of the running cell as it arrives; ``stream`` is "stdout" or "stderr"."""

    stream: str
    text: str


@dataclass(frozen=True)
class StepDone:
    """A step is complete: the reply and, if it held code, the cell's outcome and observation."""

    step: Step


@dataclass(frozen=True)
class Notice:
    """Something the user may want to know (a vote result, a nudge, a restarted sandbox)."""

    message: str


@dataclass(frozen=True)
class Finished:
    """The run ended; ``result`` is final."""

    result: AgentResult


AgentEvent = ModelStart | ModelText | CellStart | CellOutput | StepDone | Notice | Finished
EventHandler = Callable[[AgentEvent], None]


def fan_out(handlers: Sequence[EventHandler | None]) -> EventHandler:
    """One handler that calls each of ``handlers`` in order (None entries are skipped)."""
    active = [h for h in handlers if h is not None]

    def handle(event: AgentEvent) -> None:
        for h in active:
            h(event)

    return handle
