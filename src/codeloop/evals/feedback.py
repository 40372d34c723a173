"""Feedback for a repair round: what the visible examples showed, optionally with a runtime trace.

Short and concrete, because small models lose the thread in long prompts: the failing examples
(expected vs. got), a count of the passing ones, and in trace mode the first failure's trace.
"""

from __future__ import annotations

from codeloop.evals.visible import VisibleReport
from codeloop.sandbox.tracing import format_trace

__all__ = ["format_feedback"]


def format_feedback(
    report: VisibleReport,
    program: str,
    *,
    subject: str = "Your code",
    max_failures: int = 3,
    max_trace_chars: int = 3000,
) -> str:
    """What the model is told of an attempt's run on the docstring's examples (``subject`` names the attempt)."""
    if report.program_error is not None:
        return f"{subject} fails before any example runs:\n{report.program_error}"
    failures = [o for o in report.outcomes if not o.passed]
    total = max(report.total, len(report.outcomes))
    lines = [f"{subject} passes {report.passed} of {total} examples from the docstring. It fails:"]
    for outcome in failures[:max_failures]:
        call, expected = outcome.example.call, outcome.example.expected
        if outcome.error is not None and outcome.got is None:
            lines.append(f"- {call} should return {expected}, but it raised {outcome.error}")
        else:
            lines.append(f"- {call} should return {expected}, but it returned {outcome.got}")
        if outcome.stdout.strip():
            lines.append(f"  (it printed: {outcome.stdout.strip()[-200:]!r})")
    if len(failures) > max_failures:
        lines.append(f"- and {len(failures) - max_failures} more")
    if report.trace is not None:
        lines.append("")
        lines.append(
            f"Here is what {subject[0].lower() + subject[1:]} did on the first failing example, line by line, "
            "with the values of the variables after each line:"
        )
        lines.append(format_trace(report.trace, program, max_chars=max_trace_chars))
    elif report.trace_note:
        lines.append(f"({report.trace_note})")
    return "\n".join(lines)
