"""Text shown to a model or a person: fenced so nothing inside can close it, trimmed, never silently.

Neutral helpers: the agent, the history, notebooks and the command line all use them.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TRACEBACK_LINES", "fence", "trim_middle", "trim_traceback"]

MAX_TRACEBACK_LINES = 10
_LIBRARY = "  ... (library code)"


def trim_middle(text: str, limit: int) -> str:
    """Keep the head and tail of a long text, saying how much was cut (never silently)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters cut] ...\n{text[-tail:]}"


def fence(text: str, info: str = "text") -> str:
    """Wrap text in a Markdown fence that nothing inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def trim_traceback(tb: str, max_lines: int = MAX_TRACEBACK_LINES) -> str:
    """The part of a traceback that helps a repair: the user's own frames and the error itself.

    Only the last chained traceback is kept, and library frames (pandas internals...) collapse
    into one line, so the failing line of the cell and the exception are never crowded out.
    """
    text = tb.rstrip()
    head = "Traceback (most recent call last):"
    if head in text:
        text = head + text.rsplit(head, 1)[1]
    kept: list[str] = []
    in_library = False
    for line in text.splitlines():
        if line.startswith('  File "'):
            in_library = not line.startswith('  File "<')
            if in_library:
                if kept[-1:] != [_LIBRARY]:
                    kept.append(_LIBRARY)
                continue
        elif in_library and line.startswith("    "):
            continue  # the source lines of a library frame
        kept.append(line)
    if len(kept) <= max_lines:
        return "\n".join(kept)
    return "\n".join([head, "  ...", *kept[-(max_lines - 2) :]])
