"""Spot a reply that has fallen into a loop, so generation can stop instead of spending its budget.

Small models at temperature 0 sometimes repeat themselves until the token limit: the same line
over and over (``print(f("sky"))``), or a short pattern within a line (``o o o o o``). Both are
recognised from the tail of the text alone, cheaply enough to check at every new line.
"""

from __future__ import annotations

__all__ = ["degenerate_tail"]

_SAME_LINES = 8  # this many identical non-blank lines in a row
_TAIL = 160  # characters of a single line made of one short pattern
_PERIOD = 16  # the longest such pattern


def degenerate_tail(text: str) -> bool:
    """Whether ``text`` ends in a run of one repeated line or one short repeated pattern."""
    lines = [line.strip() for line in text[-4000:].splitlines()]
    lines = [line for line in lines if line]
    if len(lines) >= _SAME_LINES and len(set(lines[-_SAME_LINES:])) == 1 and len(lines[-1]) > 3:
        return True
    tail = text[-_TAIL:]
    if len(tail) < _TAIL or "\n" in tail:
        return False
    for period in range(1, _PERIOD + 1):
        unit = tail[-period:]
        if (unit * (_TAIL // period + 1))[-_TAIL:] == tail and any(c.isalnum() for c in unit):
            return True
    return False
