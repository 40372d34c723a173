"""One model call of the agent: stream the reply, cut it after the first closed code block.

Stopping right after the closing fence (by closing the stream, which stops the backend) is what
keeps the model from writing its own imagined "output" after the code. The reading itself
(the cut, the repetition cutter, the deadline) is the engine's :func:`~codeloop.engine.read_reply`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from codeloop.engine.generation import Generation, read_reply
from codeloop.llm.contract import ChatModel
from codeloop.llm.types import Sampling
from codeloop.text import cut_after_first_block

__all__ = ["STOP_SEQUENCES", "after_first_block", "generate"]

# Backend-side stops as a second line of defence: the usual starts of an invented output.
STOP_SEQUENCES: tuple[str, ...] = ("```output", "\nOutput:\n", "\n```\n\n")


def after_first_block(text: str, piece: str) -> int | None:
    """The agent's end rule: the reply ends with its first closed Python block."""
    cut = cut_after_first_block(text)
    return None if cut is None else len(cut)


def generate(
    model: ChatModel,
    messages: Sequence[dict[str, str]],
    sampling: Sampling,
    *,
    deadline: float | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Generation:
    """Stream one reply, forwarding text to ``on_text``; stop after the first closed code block.

    ``sampling`` says how long and how random; the backend also stops at :data:`STOP_SEQUENCES`.
    Model failures propagate as :class:`~codeloop.errors.ModelError` (they abort the run).
    """
    stream = model.stream(list(messages), sampling.but(stop=STOP_SEQUENCES))
    return read_reply(stream, end=after_first_block, deadline=deadline, on_text=on_text)
