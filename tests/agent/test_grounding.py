"""Grounding the final answer in what the code printed."""

from __future__ import annotations

import pytest

from codeloop.agent.grounding import echoes, ground_answer, is_grounded, numbers_in


def test_numbers_in_reads_thousands_and_decimals() -> None:
    assert numbers_in("It is 1,234.5 or -3 or 2e10, not 1,2,3") == ["1234.5", "-3", "2e10", "1", "2", "3"]


@pytest.mark.parametrize(
    ("answer", "evidence", "task"),
    [
        ("The sum of 1 to 100 is 5050.", "5050", "Sum the integers from 1 to 100"),
        ("The result is 5,050.", "5050", ""),
        ("The mean is about 3.33.", "3.3333333333333335", ""),
        ("The reversed string is 'olleh'.", "olleh", "Reverse 'hello'"),
        ("Yes, it is True.", "True", ""),
        ("The primes are 2, 3, 5 and 7.", "[2, 3, 5, 7]", ""),
        ("The table is shown above.", "a\nb\nc\nd\ne\nf", ""),
        ("The square of 10 is 100.", "100", "x = 10\nprint(x ** 2)"),
    ],
)
def test_consistent_answers_are_kept(answer: str, evidence: str, task: str) -> None:
    assert is_grounded(answer, evidence, task)
    assert ground_answer(answer, evidence, task) == (answer, "model")


@pytest.mark.parametrize(
    ("answer", "evidence", "task"),
    [
        ("The sum is 5000.", "5050", "Sum 1 to 100"),
        ("The reversed string is 'loopcod'.", "pooledoc", "Reverse 'codeloop'"),
        ("The answer is forty-two.", "42", ""),
        ("17 is prime.", "False", "Is 17 prime?"),
    ],
)
def test_contradicting_answers_are_replaced_by_the_output(answer: str, evidence: str, task: str) -> None:
    assert not is_grounded(answer, evidence, task)
    assert ground_answer(answer, evidence, task) == (evidence, "output")


def test_no_evidence_keeps_the_model_answer() -> None:
    assert ground_answer("  Hello there.  ", None) == ("Hello there.", "model")


def test_empty_answer_falls_back_to_the_output() -> None:
    assert ground_answer("", "12") == ("12", "output")


def test_echoes_spots_a_repeated_loop_message() -> None:
    told = "Error: boom\n\nThe code failed, so there is no result yet. Write a corrected block."
    assert echoes("The code failed, so there is no result yet.", told)
    assert not echoes("It is 4.", told)
    assert not echoes("The answer is 42.", told)


def test_a_bare_boolean_answer_is_checked_against_the_outputs_polarity() -> None:
    # The task asked "Answer True or False." and the program printed a sentence.
    assert is_grounded("True", "2000 is a leap year.")
    assert is_grounded("False.", "2100 is not a leap year.")
    assert is_grounded("No", "The string isn't a palindrome")
    assert not is_grounded("True", "2100 is not a leap year.")
    assert not is_grounded("False", "2000 is a leap year.")
    # An output that says True or False itself decides.
    assert is_grounded("False", "False")
    assert not is_grounded("True", "is_leap: False")
    assert ground_answer("True", "2000 is a leap year.") == ("True", "model")
    assert ground_answer("True", "2100 is not a leap year.") == ("2100 is not a leap year.", "output")
