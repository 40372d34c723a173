"""Turn a cell's outcome into the message the model reads next.

Printed text is data, never instructions: it always goes inside a fence longer than any run of
backticks it contains (so it cannot close the fence and "speak" as the loop), it is capped in
size, and the loop's own words stay outside the fence.
"""

from __future__ import annotations

from codeloop.agent.result import CellOutcome, Figure
from codeloop.text import fence, trim_middle, trim_traceback

__all__ = ["FIX_TAIL", "OK_TAIL", "evidence_of", "format_observation"]

MAX_OUTPUT_CHARS = 1500

OK_TAIL = "If this answers the task, reply with the final answer in one sentence, without code."
FIX_TAIL = "Fix the code and write the whole corrected program in one ```python block."
EMPTY_TAIL = "The code ran without error but printed nothing. Write code that prints the result."


def evidence_of(outcome: CellOutcome) -> str | None:
    """What a successful cell showed: its printed output, or else the last expression's value."""
    if not outcome.ok:
        return None
    if outcome.stdout.strip():
        return outcome.stdout.strip()
    for value in (outcome.value, outcome.probed_value):
        if value is not None and value.strip() and value.strip() != "None":
            return value.strip()
    return None


def _notes(outcome: CellOutcome, figures: list[Figure]) -> list[str]:
    notes = [f"Note: {n}" for n in outcome.notes[:3]]
    if figures:
        notes.append(f"{len(figures)} figure(s) were produced and saved for the user.")
    if outcome.files:
        names = ", ".join(outcome.files[:10]) + (" ..." if len(outcome.files) > 10 else "")
        notes.append(f"Files created or changed: {names}")
    return notes


def format_observation(
    outcome: CellOutcome, figures: list[Figure] | None = None, *, answer_format: str = ""
) -> str:
    """The user-turn message describing what a cell did, ending with what the model should do next.

    ``answer_format`` (the task's own words on the answer's form, "Answer True or False.") is
    repeated after the request for the final answer, where a small model heeds it.
    """
    figures = figures or []
    parts: list[str] = []
    stdout = outcome.stdout.strip()
    if stdout:
        parts.append("Output:\n" + fence(trim_middle(stdout, MAX_OUTPUT_CHARS)))
    if outcome.status == "ok":
        value = (outcome.value or "").strip()
        if value and value != "None":
            label = (
                "Value of the last expression"
                if stdout
                else "Nothing was printed. Value of the last expression"
            )
            parts.append(f"{label}:\n" + fence(trim_middle(value, MAX_OUTPUT_CHARS)))
        elif not stdout and outcome.probed_name and outcome.probed_value is not None:
            label = f"Nothing was printed. Value of `{outcome.probed_name}`"
            parts.append(f"{label}:\n" + fence(trim_middle(outcome.probed_value, MAX_OUTPUT_CHARS)))
        parts.extend(_notes(outcome, figures))
        if evidence_of(outcome) is None:
            parts.append(EMPTY_TAIL)
        else:
            parts.append(f"{OK_TAIL} {answer_format}".rstrip())
        return "\n\n".join(parts)
    if outcome.stderr.strip():
        parts.append("Stderr:\n" + fence(trim_middle(outcome.stderr.strip(), 600)))
    if outcome.status == "error" and outcome.error:
        tb = outcome.error.traceback or f"{outcome.error.ename}: {outcome.error.evalue}"
        parts.append("Error:\n" + fence(trim_middle(trim_traceback(tb), MAX_OUTPUT_CHARS)))
    elif outcome.status == "timeout":
        parts.append("Error: the code ran out of time and was stopped; variables defined earlier are lost.")
    elif outcome.status == "memory":
        parts.append("Error: the code ran out of memory and was stopped; variables defined earlier are lost.")
    elif outcome.status == "output_limit":
        parts.append("Error: the code printed too much output and was stopped. Print only the result.")
    else:
        parts.append(f"Error: the code failed ({outcome.status}); variables defined earlier may be lost.")
    parts.extend(_notes(outcome, figures))
    parts.append(FIX_TAIL)
    return "\n\n".join(parts)
