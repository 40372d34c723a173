"""``codeloop complete``: fill-in-the-middle code completion at a cursor.

The prompt is the model's FIM template (:mod:`codeloop.llm.fim`) around the cursor, sent raw;
generation stops as soon as enough lines have come, and the middle is post-processed by
:func:`codeloop.llm.fim.finish_middle` (overlap with the suffix trimmed, kept parsable).

>>> from codeloop.llm import get_model
>>> from codeloop.workflows.complete import complete
>>> c = complete(get_model(), "def add(a, b):\\n    return \\n", line=2, col=12)
>>> c.completion
'a + b'
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeloop.errors import CodeloopError
from codeloop.llm.fim import enough_lines, fim_context, fim_template_of, finish_middle, split_trailing_space

__all__ = ["CompleteError", "Completion", "complete", "complete_file", "read_source", "split_at_cursor"]

#: completion tokens per requested line (a long line is ~25 tokens)
TOKENS_PER_LINE = 48


class CompleteError(CodeloopError):
    """The completion cannot be made: a missing file, a cursor outside the file, undecodable text."""


@dataclass(frozen=True)
class Completion:
    """The text to insert at the cursor, and how it was made."""

    completion: str
    path: str | None
    line: int
    col: int
    model: str
    raw: str
    prompt_tokens: int | None
    completion_tokens: int | None
    time_to_first_token: float | None
    model_seconds: float
    total_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """What ``codeloop complete --json`` prints."""
        return asdict(self)


def read_source(path: str | Path) -> str:
    """The text of a file, with clear errors for a missing or undecodable one."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CompleteError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CompleteError(f"{path} is a directory, not a file") from None
    except OSError as e:
        raise CompleteError(f"cannot read {path}: {e.strerror or e}") from e
    return decode_source(data, str(path))


def decode_source(data: bytes, name: str = "<stdin>") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CompleteError(f"{name} is not UTF-8 text (byte {e.start})") from None


def split_at_cursor(source: str, line: int, col: int) -> tuple[str, str]:
    """``(before, after)`` around a 1-based ``line`` and ``col`` (columns count characters; the
    column after a line's last character is its end)."""
    lines = source.split("\n")
    if line < 1 or line > len(lines):
        raise CompleteError(
            f"line {line} is outside the file (it has {len(lines)} line(s), counting the last empty one)"
        )
    text = lines[line - 1]
    width = len(text[:-1]) if text.endswith("\r") else len(text)
    if col < 1 or col > width + 1:
        raise CompleteError(f"column {col} is outside line {line} (columns 1 to {width + 1})")
    before = "\n".join(lines[: line - 1]) + ("\n" if line > 1 else "") + text[: col - 1]
    return before, source[len(before) :]


def complete(
    model: Any,
    source: str,
    line: int,
    col: int,
    *,
    lines: int = 1,
    path: str | None = None,
    max_tokens: int | None = None,
    max_before: int = 3000,
    max_after: int = 1000,
) -> Completion:
    """Complete ``source`` at the cursor (1-based ``line``/``col``) with up to ``lines`` lines.

    Raises :class:`CompleteError` for a cursor outside the source and the model's
    :class:`~codeloop.errors.ModelError` when the model fails.
    """
    start = time.perf_counter()
    if lines < 1:
        raise CompleteError(f"lines must be at least 1, got {lines}")
    before, after = split_at_cursor(source, line, col)
    near_before, near_after = fim_context(before, after, max_before=max_before, max_after=max_after)
    near_before, space = split_trailing_space(near_before)
    template = fim_template_of(model)
    budget = max_tokens or TOKENS_PER_LINE * lines
    model_start = time.perf_counter()
    stream = model.stream_text(
        template.prompt(near_before, near_after), stop=list(template.stops), max_tokens=budget
    )
    try:
        for _ in stream:
            if enough_lines(stream.text.lstrip(" \t") if space else stream.text, lines):
                break  # the rest would be cut anyway: stop generating now
    finally:
        stream.close()
    reply = stream.reply
    raw = reply.text if reply is not None else stream.text
    model_seconds = time.perf_counter() - model_start
    middle = raw.lstrip(" \t") if space else raw
    text = finish_middle(middle, before, after, max_lines=lines, stops=template.stops)
    usage = reply.usage if reply is not None else None
    return Completion(
        completion=text,
        path=path,
        line=line,
        col=col,
        model=getattr(model, "name", type(model).__name__),
        raw=raw,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        time_to_first_token=reply.timings.time_to_first_token if reply is not None else None,
        model_seconds=round(model_seconds, 4),
        total_seconds=round(time.perf_counter() - start, 4),
    )


def complete_file(model: Any, path: str | Path, line: int, col: int, **options: Any) -> Completion:
    """:func:`complete` on a file's text (read only, never written)."""
    return complete(model, read_source(path), line, col, path=str(path), **options)
