"""Does a program's printed output state a task's computed answer?

Stricter than the benchmark's answer checker on purpose: a sample is kept for training only
when the *last line* the program printed holds the answer, so a program that prints many
numbers cannot pass by luck.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["output_matches"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _number_matches(text: str, expected: float) -> bool:
    for raw in _NUMBER.findall(text.replace(",", "")):
        if isinstance(expected, int) and not isinstance(expected, bool) and re.fullmatch(r"-?\d+", raw):
            if int(raw) == expected:
                return True
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isclose(value, float(expected), rel_tol=1e-9, abs_tol=1e-9):
            return True
        decimals = len(raw.split(".")[1]) if "." in raw and "e" not in raw.lower() else 0
        if decimals and round(float(expected), decimals) == value:
            return True
    return False


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\"'`*]", "", text.lower()).split())


def output_matches(stdout: str, answer: Any, check: str) -> bool:
    """True when the last non-empty printed line states ``answer`` (compared as ``check`` says)."""
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return False
    last = lines[-1]
    if check == "number":
        return _number_matches(last, answer)
    if check == "bool":
        words = set(re.findall(r"[a-z]+", last.lower()))
        yes, no = bool(words & {"true", "yes"}), bool(words & {"false", "no"})
        return (yes and not no) if answer else (no and not yes)
    if check == "list":
        found = [float(n) for n in _NUMBER.findall(last.replace(",", ""))]
        return found == [float(x) for x in answer]
    return _norm(str(answer)) in _norm(last)
