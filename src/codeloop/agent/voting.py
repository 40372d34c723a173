"""Self-consistency: several sampled programs vote with their outputs.

Programs that ran and showed something are grouped by their normalised output; the biggest
group wins, ties going to the earliest candidate (the greedy one comes first).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from codeloop.agent.observation import evidence_of
from codeloop.agent.result import CellOutcome

__all__ = ["output_key", "pick_winner"]

_NUM = re.compile(r"-?\d+\.\d+|-?\d+")


def _norm_number(m: re.Match[str]) -> str:
    text = m.group(0)
    try:
        value = float(text)
    except ValueError:
        return text
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def output_key(outcome: CellOutcome) -> str | None:
    """What a candidate showed, normalised so "5050.0" and "5050 " agree; None if it showed nothing."""
    evidence = evidence_of(outcome)
    if evidence is None:
        return None
    return _NUM.sub(_norm_number, " ".join(evidence.lower().split()))


def pick_winner(outcomes: Sequence[CellOutcome]) -> tuple[int, int]:
    """Index of the winning candidate and how many candidates agreed with it.

    With no candidate showing anything, the first (greedy) one is returned with agreement 0, so
    its error goes back to the model for repair.
    """
    keys = [output_key(o) for o in outcomes]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return 0, 0
    best = max(counts.values())
    winner = next(i for i, k in enumerate(keys) if k is not None and counts[k] == best)
    return winner, best
