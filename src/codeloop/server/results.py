"""Plain-text renderings of a cell result and an agent result, shared by the MCP tools and the magics."""

from __future__ import annotations

from typing import Any

from codeloop.agent import AgentResult
from codeloop.sandbox import RunResult

__all__ = ["agent_text", "run_text"]


def run_text(result: RunResult) -> str:
    """What a cell printed, its value and its error, as one text a model or a person can read."""
    parts: list[str] = []
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts.append("[stderr]\n" + result.stderr.rstrip("\n"))
    if result.value is not None:
        parts.append(f"Out[{result.cell}]: {result.value}")
    if result.error is not None:
        parts.append(result.error.traceback.rstrip("\n"))
    if result.status not in ("ok", "error"):
        parts.append(f"[status: {result.status} after {result.duration:.2f} s]")
    parts.extend(f"[note: {note}]" for note in result.notes)
    if result.figures:
        parts.append(f"[{len(result.figures)} figure(s)]")
    if result.files:
        parts.append("[files changed: " + ", ".join(result.files[:20]) + "]")
    return "\n".join(parts) if parts else "(no output)"


def agent_text(result: AgentResult, *, with_code: bool = True) -> str:
    """The answer first, then the code that ran and what it printed (for an MCP client or a notebook)."""
    lines: list[str] = []
    if result.ok:
        lines.append(f"Answer: {result.answer}")
    else:
        lines.append(
            f"No answer: the run ended with status {result.status.value}"
            + (f" ({result.error})" if result.error else "")
        )
    if with_code:
        for step in result.steps:
            if step.code is None:
                continue
            lines.append(f"\n# step {step.index + 1}\n```python\n{step.code}\n```")
            outcome: Any = step.outcome
            if outcome is not None:
                shown = outcome.stdout.rstrip("\n") or (outcome.value or "")
                if outcome.error:
                    shown = (
                        shown + "\n" if shown else ""
                    ) + f"{outcome.error.get('ename')}: {outcome.error.get('evalue')}"
                if shown:
                    lines.append(shown)
    return "\n".join(lines)
