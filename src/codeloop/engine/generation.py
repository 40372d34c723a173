"""Read one model reply as it streams: cut it where the workflow says, stop it when it loops.

Every workflow reads replies through :func:`read_reply`, so the rules live once: the reply
ends where the workflow's ``end`` rule finds its end (after the first closed code block for
the agent, at the first line of demo code for a function body), generation stops as soon as
the text falls into a loop (:func:`~codeloop.llm.repetition.degenerate_tail`, the one
repetition cutter) or the deadline passes, and the stream is always closed, which stops the
backend. Stopping early is done here, on the client, because a plain stop string cannot tell
a closing fence from an opening one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from codeloop.llm.repetition import degenerate_tail

__all__ = ["EndRule", "Generation", "read_reply"]

#: ``end(text, piece)``: where the reply ends within ``text`` (the text so far, ``piece`` the
#: newest chunk), or None to read on
EndRule = Callable[[str, str], int | None]


@dataclass(frozen=True)
class Generation:
    """A finished (or cut) reply: its text, what it cost and how it ended."""

    text: str
    prompt_tokens: int
    completion_tokens: int  # as the backend counted them; else one per chunk
    seconds: float
    #: "stop", "length", ... as the backend said; "cut" (the end rule), "repetition", "deadline"
    finish_reason: str


def read_reply(
    stream: Iterator[str],
    *,
    end: EndRule | None = None,
    deadline: float | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Generation:
    """Read ``stream`` (a model's ``stream``/``stream_text`` reply) to its end, or to where it should stop.

    ``on_text`` gets the text as it comes, never past the cut (an end rule should find the end
    as soon as it is written, as the agent's closing fence is). Model failures propagate as
    :class:`~codeloop.errors.ModelError`.
    """
    start = time.monotonic()
    text = ""
    shown = 0
    chunks = 0
    finish: str | None = None
    try:
        for piece in stream:
            chunks += 1
            text += piece
            cut = end(text, piece) if end is not None else None
            if cut is not None:
                text = text[:cut]
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
    prompt_tokens, completion_tokens, reported = 0, chunks, None
    reply = getattr(stream, "reply", None)
    if reply is not None:  # the backend's own counts (any field may be missing)
        usage = getattr(reply, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None) or 0
        counted = getattr(usage, "completion_tokens", None)
        if counted is not None:
            completion_tokens = counted
        reason = getattr(reply, "finish_reason", None)
        reason = getattr(reason, "value", reason)
        reported = str(reason) if reason else None
    return Generation(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        seconds=time.monotonic() - start,
        finish_reason=finish or reported or "stop",
    )
