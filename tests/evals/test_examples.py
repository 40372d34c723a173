"""Visible examples from the docstrings: every style HumanEval uses, and agreement with the truth."""

from __future__ import annotations

import math

from codeloop.evals.examples import Example, extract_examples
from codeloop.evals.problems import Problem


def _problem(prompt: str, entry_point: str) -> Problem:
    return Problem("T/0", prompt, entry_point, "def check(c):\n    pass\n", "    pass\n")


def test_doctest_style(problems: dict[str, Problem]) -> None:
    found = extract_examples(problems["HumanEval/0"])
    assert found == [
        Example("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        Example("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"),
    ]


def test_escapes_in_docstring_stay_escapes(problems: dict[str, Problem]) -> None:
    calls = [e.call for e in extract_examples(problems["HumanEval/51"])]
    assert "remove_vowels('abcdef\\nghijklm')" in calls


def test_inline_arrow_styles(problems: dict[str, Problem]) -> None:
    assert Example("digitSum('abAB')", "131") in extract_examples(problems["HumanEval/66"])  # =>
    assert Example("will_it_fly([1, 2], 5)", "False") in extract_examples(problems["HumanEval/72"])  # ➞
    assert Example("iscube(64)", "True") in extract_examples(problems["HumanEval/77"])  # ==>
    assert Example("search([5, 5, 4, 4, 4])", "-1") in extract_examples(problems["HumanEval/69"])  # ==


def test_multi_line_call(problems: dict[str, Problem]) -> None:
    found = extract_examples(problems["HumanEval/87"])
    assert Example("get_row([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 1, 6], [1, 2, 3, 4, 5, 1]], 1)",
                   "[(0, 0), (1, 4), (1, 0), (2, 5), (2, 0)]") in found


def test_for_and_input_output_styles(problems: dict[str, Problem]) -> None:
    assert Example("skjkasdkd([0, 81, 12, 3, 1, 21])", "3") in extract_examples(problems["HumanEval/94"])
    assert Example("reverse_delete('abcde', 'ae')", "('bcd',False)") in extract_examples(problems["HumanEval/112"])
    assert Example("words_in_sentence('This is a test')", '"is"') in extract_examples(problems["HumanEval/143"])
    assert Example("minPath([[5, 9, 3], [4, 1, 6], [7, 8, 2]], 1)", "[1]") in extract_examples(problems["HumanEval/129"])


def test_arithmetic_before_the_value(problems: dict[str, Problem]) -> None:
    found = extract_examples(problems["HumanEval/67"])  # "-> 19 - 5 - 6 = 8"
    assert Example("fruit_distribution('5 apples and 6 oranges', 19)", "8") in found


def test_non_literal_calls_are_dropped() -> None:
    prompt = 'def f(s):\n    """\n    f(a) => False\n    f(x + 1) => 2\n    f("ok") => True\n    """\n'
    assert extract_examples(_problem(prompt, "f")) == [Example("f('ok')", "True")]


def test_lowercase_booleans_and_trailing_remarks() -> None:
    prompt = (
        'def g(x, n):\n    """\n    g(1, 4) => true\n    g(3, 2) => false\n'
        "    g(2, 2) # => 'Yes' (because it is)\n    \"\"\"\n"
    )
    assert extract_examples(_problem(prompt, "g")) == [
        Example("g(1, 4)", "True"),
        Example("g(3, 2)", "False"),
        Example("g(2, 2)", "'Yes'"),
    ]


def test_no_examples_gives_an_empty_list(problems: dict[str, Problem]) -> None:
    assert extract_examples(problems["HumanEval/38"]) == []


def test_extraction_agrees_with_canonical_solutions(problems: dict[str, Problem]) -> None:
    """The examples are what the docstrings say; nearly all of them must hold for the true solution.

    The few that do not are HumanEval's own docstring mistakes (e.g. HumanEval/47, /116).
    """
    with_examples = total = agree = 0
    for problem in problems.values():
        found = extract_examples(problem)
        with_examples += bool(found)
        namespace: dict[str, object] = {}
        exec(problem.prompt + problem.canonical_solution, namespace)
        for example in found:
            total += 1
            got, want = eval(example.call, namespace), eval(example.expected)
            if got == want or (
                isinstance(got, int | float) and isinstance(want, int | float) and math.isclose(got, want, abs_tol=1e-6)
            ):
                agree += 1
    assert with_examples >= 150
    assert total >= 400
    assert agree / total >= 0.97
