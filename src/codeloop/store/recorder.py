"""An agent event handler that writes each step to the history as soon as it completes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from codeloop.agent.events import AgentEvent, Finished, StepDone
from codeloop.errors import HistoryError
from codeloop.store.history import History

__all__ = ["Recorder"]

T = TypeVar("T")


class Recorder:
    """Call ``begin(task)`` before a run, pass the recorder as (part of) the agent's ``on_event``.

    Figures are saved on ``StepDone`` (so their paths are known before anything prints them),
    and the final result is written on ``Finished``. If the database fails mid-run (locked, disk
    full), recording stops, ``error`` says why and ``on_error`` is told once: the run itself goes on.
    """

    def __init__(
        self, history: History, conversation_id: int, on_error: Callable[[HistoryError], None] | None = None
    ) -> None:
        self.history = history
        self.conversation_id = conversation_id
        self.on_error = on_error
        self.turn_id: int | None = None
        self.error: HistoryError | None = None

    def begin(self, task: str) -> int | None:
        """Record the start of a turn; return its id (None once recording has failed)."""
        self.turn_id = self._guard(lambda: self.history.start_turn(self.conversation_id, task))
        return self.turn_id

    def __call__(self, event: AgentEvent) -> None:
        turn_id = self.turn_id
        if turn_id is None:
            return
        if isinstance(event, StepDone):
            self._guard(lambda: self.history.record_step(self.conversation_id, turn_id, event.step))
        elif isinstance(event, Finished):
            self._guard(lambda: self.history.finish_turn(turn_id, event.result))
            self.turn_id = None

    def _guard(self, action: Callable[[], T]) -> T | None:
        if self.error is not None:
            return None
        try:
            return action()
        except HistoryError as e:
            self.error, self.turn_id = e, None
            if self.on_error is not None:
                self.on_error(e)
            return None
