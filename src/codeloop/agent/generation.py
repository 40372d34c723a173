"""One model call of the loop: stream the reply, cut it after the first closed code block.

Stopping right after the closing fence (by closing the stream, which stops the backend) is what
keeps the model from writing its own imagined "output" after the code. The cut is done here,
on the client, because a plain stop string cannot tell a closing fence from an opening one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from codeloop.agent.parsing import cut_after_first_block
from codeloop.agent.result import Usage
from codeloop.llm.repetition import degenerate_tail

__all__ = ["STOP_SEQUENCES", "Generation", "ModelLike", "generate"]

# Backend-side stops as a second line of defence: the usual starts of an invented output.
STOP_SEQUENCES: tuple[str, ...] = ("```output", "\nOutput:\n", "\n```\n\n")


class ModelLike(Protocol):
    """The part of the model contract (DESIGN.md §3) the loop uses."""

    name: str

    def stream(
        self,
        messages: Iterable[object],
        *,
        stop: str | Iterable[str] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]: ...


@dataclass
class Generation:
    """A finished (or cut) reply: its text, what it cost and how it ended."""

    text: str
    usage: Usage
    seconds: float
    finish_reason: str  # "stop", "length", "cut" (we closed it after a code block), "deadline", ...


def _usage_of(stream: Any, chunks: int) -> tuple[Usage, str | None]:
    """Token usage from the stream's finished reply, else an estimate (one chunk ~ one token)."""
    reply = getattr(stream, "reply", None)
    if reply is not None:
        u = reply.usage
        finish = getattr(reply.finish_reason, "value", reply.finish_reason)
        completion = u.completion_tokens if u.completion_tokens is not None else chunks
        return Usage(u.prompt_tokens or 0, completion, 1), str(finish) if finish else None
    return Usage(0, chunks, 1), None


def generate(
    model: ModelLike,
    messages: Sequence[dict[str, str]],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int | None = None,
    deadline: float | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Generation:
    """Stream one reply, forwarding text to ``on_text``; stop after the first closed code block.

    Model failures propagate as :class:`~codeloop.errors.ModelError` (they abort the run).
    """
    start = time.monotonic()
    stream = model.stream(
        list(messages), stop=list(STOP_SEQUENCES), max_tokens=max_tokens, temperature=temperature, seed=seed
    )
    text = ""
    shown = 0
    chunks = 0
    finish: str | None = None
    try:
        for piece in stream:
            chunks += 1
            text += piece
            cut = cut_after_first_block(text)
            if cut is not None:
                text = cut
                finish = "cut"
            if on_text is not None and len(text) > shown:
                on_text(text[shown:])
                shown = len(text)
            if finish == "cut":
                break
            if ("\n" in piece or chunks % 16 == 0) and degenerate_tail(text):
                finish = "repetition"  # the model is looping: stop instead of spending the budget
                break
            if deadline is not None and time.monotonic() > deadline:
                finish = "deadline"
                break
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    usage, reported = _usage_of(stream, chunks)
    return Generation(
        text=text, usage=usage, seconds=time.monotonic() - start, finish_reason=finish or reported or "stop"
    )
