"""Run one agent task in a thread and hand its events to an asyncio consumer, with a stop switch.

The faces (HTTP SSE stream, MCP tool, notebook magic) all use :class:`TaskRunner`; the loop itself
is :class:`codeloop.agent.Agent`, unchanged. Events become plain JSON-ready dicts by
:func:`event_to_dict` (figures as base64 PNG, as ``codeloop exec --json`` gives them).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from codeloop.agent import (
    Agent,
    AgentEvent,
    AgentResult,
    CellOutput,
    CellStart,
    Finished,
    Limits,
    ModelStart,
    ModelText,
    Notice,
    RunStatus,
    Step,
    StepDone,
    fan_out,
)
from codeloop.agent.result import Figure
from codeloop.errors import CodeloopError, ConfigError, HistoryError

__all__ = ["TaskRunner", "TaskStopped", "event_to_dict", "figure_png_b64", "step_to_dict"]


class TaskStopped(KeyboardInterrupt):
    """Raised inside the loop's thread when the client stopped the task: the loop's interrupt path."""


def figure_png_b64(fig: Figure) -> str | None:
    """A figure's PNG as base64 (from memory, else from its saved file), or None if it is gone."""
    png = fig.png
    if png is None and fig.path:
        try:
            png = Path(fig.path).read_bytes()
        except OSError:
            return None
    return base64.b64encode(png).decode("ascii") if png is not None else None


def step_to_dict(step: Step) -> dict[str, Any]:
    """A step as in ``codeloop run --json``, but its figures as base64 PNG instead of server paths."""
    d = step.to_dict()
    d["figures"] = [b64 for b64 in (figure_png_b64(f) for f in step.figures) if b64 is not None]
    return d


def result_to_dict(result: AgentResult) -> dict[str, Any]:
    d = result.to_dict()
    d["steps"] = [step_to_dict(s) for s in result.steps]
    return d


def event_to_dict(event: AgentEvent) -> dict[str, Any]:
    """One agent event as a JSON-ready dict with a ``type`` (the SSE event name)."""
    if isinstance(event, ModelStart):
        return {"type": "model_start", "step": event.step}
    if isinstance(event, ModelText):
        return {"type": "text", "text": event.text}
    if isinstance(event, CellStart):
        return {"type": "cell", "step": event.step, "code": event.code}
    if isinstance(event, CellOutput):
        return {"type": "output", "stream": event.stream, "text": event.text}
    if isinstance(event, StepDone):
        return {"type": "step", "step": step_to_dict(event.step)}
    if isinstance(event, Notice):
        return {"type": "notice", "message": event.message}
    if isinstance(event, Finished):
        return {"type": "done", "result": result_to_dict(event.result)}
    raise TypeError(f"not an agent event: {event!r}")


class TaskRunner:
    """One task: ``start()`` runs the agent in a thread; ``events()`` yields its events as dicts.

    ``stop()`` ends the run promptly: the next event raises :class:`TaskStopped` in the loop's
    thread (the loop's own interrupt path: status "interrupted"), and a cell still running is cut
    short by closing its sandbox. The run is stored in ``history_path`` when given.
    """

    def __init__(
        self,
        model_factory: Callable[[], Any],
        task: str,
        *,
        limits: Limits | None = None,
        history_path: Path | None = None,
        sandbox_factory: Callable[[], Any] | None = None,
        on_finish: Callable[[TaskRunner], None] | None = None,
    ) -> None:
        if not isinstance(task, str) or not task.strip():
            raise ConfigError("the task is empty: say what to compute")
        self.task = task.strip()
        self.limits = limits or Limits()
        self._model_factory = model_factory
        self._history_path = history_path
        self._sandbox_factory = sandbox_factory or self._default_sandbox
        self._on_finish = on_finish
        self._stop = threading.Event()
        self._raised = False
        self._sandbox: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any] | None] | None = None
        self.result: AgentResult | None = None
        self.history_id: int | None = None

    def _default_sandbox(self) -> Any:
        from codeloop.sandbox import Sandbox

        return Sandbox(timeout=self.limits.cell_timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop the task (idempotent; safe from any thread)."""
        self._stop.set()
        with self._lock:
            sandbox = self._sandbox
        if sandbox is not None:
            sandbox.close()  # a cell in flight is cut short; the loop then sees the stop

    def start(self) -> None:
        """Start the run in its own thread; call from the event loop that will read ``events()``."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._thread = threading.Thread(target=self._work, name="codeloop-task", daemon=True)
        self._thread.start()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The run's events as dicts, ending with ``done`` (or ``error`` if it could not start)."""
        assert self._queue is not None, "call start() first"
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _put(self, item: dict[str, Any] | None) -> None:
        assert self._loop is not None and self._queue is not None
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody listens
            self._stop.set()

    def _forward(self, event: AgentEvent) -> None:
        # Stop once, at an event the loop emits from its own code (not from inside the sandbox's
        # output callback); the loop then ends the run on its interrupt path and reports Finished.
        if self._stop.is_set() and not self._raised and not isinstance(event, CellOutput | Finished):
            self._raised = True
            raise TaskStopped()
        self._put(event_to_dict(event))

    def _work(self) -> None:
        history = recorder = None
        try:
            model = self._model_factory()
            with self._lock:
                if self._stop.is_set():
                    raise TaskStopped()
                self._sandbox = self._sandbox_factory()
            history, recorder = self._open_history(getattr(model, "name", ""))
            self._put({"type": "start", "id": self.history_id, "model": str(getattr(model, "name", ""))})
            agent = Agent(
                model, sandbox=self._sandbox, limits=self.limits, on_event=fan_out([recorder, self._forward])
            )
            self.result = agent.run(self.task)
        except TaskStopped:
            self.result = AgentResult(
                self.task, status=RunStatus.INTERRUPTED, error="stopped before it began"
            )
            self._put({"type": "done", "result": result_to_dict(self.result)})
        except CodeloopError as e:
            self._put({"type": "error", "message": str(e)})
        except Exception as e:  # a bug of ours: say so on the stream instead of hanging the client
            self._put({"type": "error", "message": f"internal error: {type(e).__name__}: {e}"})
        finally:
            with self._lock:
                sandbox, self._sandbox = self._sandbox, None
            if sandbox is not None:
                sandbox.close()
            if history is not None:
                history.close()
            self._put(None)
            if self._on_finish is not None:
                self._on_finish(self)  # the thread is done: nothing of this task runs any more

    def _open_history(self, model_name: str) -> tuple[Any, Any]:
        if self._history_path is None:
            return None, None
        from codeloop.store import History, Recorder

        try:
            history = History(self._history_path)
        except HistoryError:
            return None, None
        try:
            conversation = history.new_conversation("run", self.task, model_name)
        except HistoryError:
            history.close()
            return None, None
        recorder = Recorder(history, conversation)
        recorder.begin(self.task)
        self.history_id = conversation
        return history, recorder
