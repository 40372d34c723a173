"""Rebuild the chat messages of earlier turns, for multi-turn chat and ``chat --resume``.

Earlier turns are replayed as the model saw them (task, replies, observations) with the final
answer as the loop reported it; old turns are dropped first when the context budget is tight.
"""

from __future__ import annotations

from collections.abc import Sequence

from codeloop.agent.result import AgentResult

__all__ = ["history_messages", "turn_messages"]


def turn_messages(result: AgentResult) -> list[dict[str, str]]:
    """The messages of one finished turn, in order."""
    messages = [{"role": "user", "content": result.task}]
    for i, step in enumerate(result.steps):
        last = i == len(result.steps) - 1
        text = (
            result.answer if (last and result.ok and step.code is None and result.answer) else step.model_text
        )
        messages.append({"role": "assistant", "content": text or "(no reply)"})
        if step.observation:
            messages.append({"role": "user", "content": step.observation})
    if messages[-1]["role"] == "user":
        # A turn cut short (limit, Ctrl-C): close it so roles keep alternating.
        messages.append({"role": "assistant", "content": f"(stopped: {result.status.value})"})
    return messages


def history_messages(turns: Sequence[AgentResult], budget_chars: int = 6000) -> list[dict[str, str]]:
    """Messages of the most recent turns that fit in ``budget_chars`` (whole turns only)."""
    kept: list[list[dict[str, str]]] = []
    used = 0
    for result in reversed(turns):
        msgs = turn_messages(result)
        size = sum(len(m["content"]) for m in msgs)
        if kept and used + size > budget_chars:
            break
        kept.append(msgs)
        used += size
    return [m for msgs in reversed(kept) for m in msgs]
