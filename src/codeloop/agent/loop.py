"""The agent loop: the model writes code, the sandbox runs it, the model sees what happened.

Two kinds of failure are kept apart. The user's code failing is an observation: it goes back
to the model, which repairs. The model backend or the sandbox itself failing (ModelError,
SandboxError) aborts the run with a clear error; so does Ctrl-C, cleanly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

from codeloop.agent.events import AgentEvent, EventHandler
from codeloop.agent.prompts import SYSTEM_PROMPT, few_shot_messages, task_message
from codeloop.agent.result import AgentResult
from codeloop.agent.run import TaskRun
from codeloop.agent.settings import Limits, Strategy
from codeloop.errors import ConfigError, SandboxError
from codeloop.llm.contract import ChatModel
from codeloop.sandbox.contract import Session

__all__ = ["Agent"]

Message = dict[str, str]


class Agent:
    """Answers tasks by having ``model`` write Python that runs in one stateful sandbox session.

    >>> with Agent(get_model()) as agent:          # doctest: +SKIP
    ...     result = agent.run("What is 2**100?")
    ...     print(result.answer)

    ``run`` never raises for the model's or the code's failures: the returned
    :class:`AgentResult` says how the run ended (``status``, ``error``).
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        sandbox: Session | None = None,
        sandbox_factory: Callable[[], Session] | None = None,
        limits: Limits | None = None,
        strategy: Strategy | None = None,
        on_event: EventHandler | None = None,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.strategy = strategy or Strategy()
        self.on_event = on_event
        self.system_prompt = system_prompt
        self._sandbox = sandbox
        self._owns_sandbox = sandbox is None
        self._factory = sandbox_factory or self._default_sandbox

    def _default_sandbox(self) -> Session:
        from codeloop.sandbox import Sandbox  # imported late: the loop's tests never need it

        return Sandbox(timeout=self.limits.cell_timeout)

    @property
    def sandbox(self) -> Session:
        """The session cells run in; created on first use and kept across runs (state persists)."""
        if self._sandbox is None:
            self._sandbox = self._factory()
        return self._sandbox

    def emit(self, event: AgentEvent) -> None:
        """Pass an event to the handler, if any."""
        if self.on_event is not None:
            self.on_event(event)

    def recover_from_interrupt(self) -> None:
        """After Ctrl-C stopped a cell mid-run: restart the worker (files kept) or drop the session."""
        restart = getattr(self._sandbox, "restart", None)
        if callable(restart):
            try:
                restart()
                return
            except SandboxError:
                pass
        self.reset()

    def reset(self) -> None:
        """Forget the session's state: the next run starts in a fresh sandbox (if this agent made it)."""
        if self._owns_sandbox and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def close(self) -> None:
        """Close the sandbox this agent created (a sandbox passed in stays the caller's)."""
        self.reset()

    def __enter__(self) -> Agent:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def example_messages(self, task: str, history: Sequence[Message] = ()) -> list[Message]:
        """The worked examples shown before ``task`` (none when ``few_shot`` is off).

        In a conversation they are chosen for its first turn still in ``history`` and stay the
        same on later turns: they come before the history, so changing them would make the
        model re-read the whole conversation (its cached prefix would no longer match).
        """
        if not self.strategy.few_shot:
            return []
        if not self.strategy.select_examples:
            return few_shot_messages(None, restate=self.strategy.restate_task)
        first = next((m["content"] for m in history if m.get("role") == "user"), task)
        return few_shot_messages(first, restate=self.strategy.restate_task)

    def initial_messages(
        self, task: str, history: Sequence[Message] = (), examples: Sequence[Message] | None = None
    ) -> list[Message]:
        """System prompt, worked examples (``example_messages`` unless given), earlier turns, the task."""
        if examples is None:
            examples = self.example_messages(task, history)
        messages = [{"role": "system", "content": self.system_prompt}, *(dict(m) for m in examples)]
        messages.extend(dict(m) for m in history)
        messages.append({"role": "user", "content": task_message(task, restate=self.strategy.restate_task)})
        return messages

    def run(self, task: str, *, history: Sequence[Message] = ()) -> AgentResult:
        """Solve ``task``; ``history`` holds earlier turns' messages (multi-turn chat)."""
        if not isinstance(task, str) or not task.strip():
            raise ConfigError("the task is empty: say what to compute")
        task = task.strip()
        examples = self.example_messages(task, history)
        return TaskRun(
            task,
            self.initial_messages(task, history, examples),
            examples=len(examples),
            model=self.model,
            session=lambda: self.sandbox,
            limits=self.limits,
            strategy=self.strategy,
            emit=self.on_event,
            on_interrupt=self.recover_from_interrupt,
        ).execute()
