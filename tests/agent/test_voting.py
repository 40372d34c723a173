"""Self-consistency voting over candidate outputs."""

from __future__ import annotations

from codeloop.agent.result import CellOutcome
from codeloop.agent.voting import output_key, pick_winner


def test_output_key_normalises_numbers_and_space() -> None:
    assert output_key(CellOutcome("ok", stdout="5050.0 \n")) == output_key(CellOutcome("ok", stdout="5050"))
    assert output_key(CellOutcome("error", stdout="5050")) is None


def test_majority_wins_and_ties_go_to_the_first() -> None:
    a, b = CellOutcome("ok", stdout="1"), CellOutcome("ok", stdout="2")
    assert pick_winner([a, b, CellOutcome("ok", stdout="2.0")]) == (1, 2)
    assert pick_winner([a, b]) == (0, 1)


def test_no_candidate_showing_anything_picks_the_greedy_one() -> None:
    assert pick_winner([CellOutcome("error"), CellOutcome("ok")]) == (0, 0)
