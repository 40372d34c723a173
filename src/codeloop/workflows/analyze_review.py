"""The model's review for ``codeloop analyze``: a few concrete suggestions, each tied to a real line.

The model sees the file with numbered lines and the tools' findings, and answers one suggestion
per line as ``LINE: text``. A suggestion whose line does not exist in the file (or is blank) is
dropped, so every suggestion that reaches the user points at code that is there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from codeloop.workflows.analyze_findings import Finding, SourceFile

__all__ = ["REVIEW_RULE", "REVIEW_TOOL", "parse_suggestion", "review_file", "review_prompt"]

REVIEW_TOOL = "model"
REVIEW_RULE = "review"
#: how much of a file the model sees (characters of numbered source)
MAX_SOURCE_CHARS = 9000

_SYSTEM = (
    "You are a senior Python reviewer. You point out real bugs, security risks and confusing code "
    "in the file you are shown, and say concretely how to fix each. You never invent line numbers."
)
_LINE = re.compile(
    r"^\s*(?:[-*•]\s*|\d+[.)]\s+)?(?:\*\*)?(?:line|l)?\s*(\d+)(?:\*\*)?\s*[:\-–—]\s*(.+?)\s*$", re.I
)


def review_prompt(
    source: SourceFile, findings: Sequence[Finding], max_suggestions: int
) -> list[dict[str, str]]:
    """The chat messages that ask for the review of ``source``."""
    numbered: list[str] = []
    size = 0
    for i, line in enumerate(source.lines, 1):
        row = f"{i:4d}| {line}"
        size += len(row) + 1
        if size > MAX_SOURCE_CHARS:
            numbered.append("   ...| (the rest of the file is not shown)")
            break
        numbered.append(row)
    notes = "\n".join(f"- line {f.line}: {f.rule} {f.message}" for f in findings[:15]) or "- none"
    user = (
        f"File `{source.path}`:\n```python\n" + "\n".join(numbered) + "\n```\n\n"
        f"Linters already reported:\n{notes}\n\n"
        f"Give at most {max_suggestions} concrete suggestions to improve this code, most important first. "
        "Write each on its own line as `LINE: suggestion`, where LINE is the number shown left of the "
        "code it is about. No introduction, no code blocks."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def parse_suggestion(text: str, source: SourceFile) -> tuple[int, str] | None:
    """``(line, suggestion)`` from one answer line, or None when it names no existing, non-blank line."""
    m = _LINE.match(text)
    if not m:
        return None
    line = int(m.group(1))
    lines = source.lines
    if not 1 <= line <= len(lines) or not lines[line - 1].strip():
        return None
    message = m.group(2).strip().strip("*").strip()
    return (line, message) if len(message) >= 8 else None


def review_file(
    model: Any,
    source: SourceFile,
    findings: Sequence[Finding],
    *,
    max_suggestions: int = 3,
    max_tokens: int = 400,
) -> Iterator[Finding]:
    """Stream the model's suggestions for ``source`` as findings (tool ``model``, severity ``info``),
    each as soon as its line is complete. Raises the model's :class:`~codeloop.errors.ModelError`."""
    stream = model.stream(review_prompt(source, findings, max_suggestions), max_tokens=max_tokens)
    seen: set[tuple[int, str]] = set()
    pending = ""
    try:
        for chunk in stream:
            pending += chunk
            *complete, pending = pending.split("\n")
            for text in complete:
                yield from _accept(text, source, seen, max_suggestions)
                if len(seen) >= max_suggestions:
                    return
        yield from _accept(pending, source, seen, max_suggestions)
    finally:
        stream.close()


def _accept(text: str, source: SourceFile, seen: set[tuple[int, str]], limit: int) -> Iterator[Finding]:
    parsed = parse_suggestion(text, source)
    if parsed is None or parsed in seen or len(seen) >= limit:
        return
    seen.add(parsed)
    line, message = parsed
    yield Finding(source.path, line, 1, REVIEW_RULE, REVIEW_TOOL, "info", message)
