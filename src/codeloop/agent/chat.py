"""A multi-turn conversation: one agent, one sandbox session kept across turns, the turns so far."""

from __future__ import annotations

from collections.abc import Sequence

from codeloop.agent.loop import Agent
from codeloop.agent.result import AgentResult
from codeloop.agent.transcript import history_messages

__all__ = ["Chat"]


class Chat:
    """Each ``send`` is one agent run that sees the earlier turns; variables persist between turns."""

    def __init__(self, agent: Agent, turns: Sequence[AgentResult] = (), *, context_chars: int = 6000) -> None:
        self.agent = agent
        self.turns: list[AgentResult] = list(turns)
        self.context_chars = context_chars

    def send(self, text: str) -> AgentResult:
        """Run one turn and remember it."""
        result = self.agent.run(text, history=history_messages(self.turns, self.context_chars))
        self.turns.append(result)
        return result

    def reset(self) -> None:
        """Forget the turns and start a fresh sandbox session."""
        self.turns.clear()
        self.agent.reset()
