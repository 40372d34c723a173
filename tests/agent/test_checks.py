"""Static checks on model code before it runs."""

from __future__ import annotations

import pytest

from codeloop.agent.checks import normalise_code, prints_only_literals


@pytest.mark.parametrize(
    "src",
    ["print('loopcod')", "42", "print(1, 'a')\nprint(2)", "result = 20\nprint(result)", "a = b = 'x'\na"],
)
def test_literal_only_code(src: str) -> None:
    assert prints_only_literals(src)


@pytest.mark.parametrize(
    "src", ["print(6 * 7)", "x = 1\nprint(x + 1)", "print(len('abc'))", "", "print((", "x = 1\nprint(y)"]
)
def test_code_that_computes_or_does_not_parse(src: str) -> None:
    assert not prints_only_literals(src)


def test_normalise_ignores_comments_and_spacing() -> None:
    assert normalise_code("x=1 # set\n\nprint( x )") == normalise_code("x = 1\nprint(x)")
    assert normalise_code("print((") == "print(("
