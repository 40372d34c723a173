"""Model-proposed tasks: parsing, bounds and dedupe, the consistency vote, and the sampling stage's use of it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from codeloop.selftrain.generated import (
    bench_task_texts,
    final_answer,
    is_hard_coded,
    normalise_task,
    parse_proposal,
    propose_tasks,
    vote,
)


@pytest.mark.parametrize(
    ("answers", "m", "expected"),
    [
        (["6", "6", "6", "7"], 3, ("6", [0, 1, 2])),
        (["6", "6", "7", "7"], 3, (None, [])),  # 2 of 4 is not 3 of 4
        (["6", "6", "6", "6"], 3, ("6", [0, 1, 2, 3])),
        (["6", None, "6", "6"], 3, ("6", [0, 2, 3])),
        ([None, None, None, None], 1, (None, [])),  # a program that printed nothing never votes
        (["a", "b"], 1, (None, [])),  # a tie for the top is no agreement
        (["x", "y", "x"], 2, ("x", [0, 2])),
    ],
)
def test_vote(answers: list[str | None], m: int, expected: tuple[str | None, list[int]]) -> None:
    assert vote(answers, m) == expected


@pytest.mark.parametrize(
    ("stdout", "answer"),
    [
        ("step 1\n42\n", "42"),
        ("Total: 1,234\n", "1234"),  # one number on the line: its label does not matter
        ("2024-03-05\n", "2024-03-05"),
        ("[1, 2, 3]\n", "[1, 2, 3]"),
        ("1,234\n", "1234"),
        ("6.0\n", "6"),
        ("0.333333333\n", "0.333333"),
        ("'Tuesday'.\n", "tuesday"),
        ("  The   Answer IS  Blue \n\n", "the answer is blue"),
        ("", None),
        ("x" * 200 + "\n", None),  # a long dump is not an answer
    ],
)
def test_final_answer(stdout: str, answer: str | None) -> None:
    assert final_answer(stdout) == answer


def test_hard_coded_numbers_do_not_vote() -> None:
    task = "How many primes are below 100?"
    assert is_hard_coded("print(25)", "25", task)
    assert not is_hard_coded("print(sum(1 for n in range(2, 100) if all(n % d for d in range(2, n))))", "25", task)
    assert not is_hard_coded("n = 100\nprint(n)", "100", task)  # the number comes from the task
    assert not is_hard_coded("print(2)", "2", task)  # one digit: too common to judge
    assert not is_hard_coded("print('blue')", "blue", task)
    assert not is_hard_coded("x = 125\nprint(x - 100)", "25", task)  # 125 is not 25


@pytest.mark.parametrize(
    ("reply", "task"),
    [
        ("Question: How many vowels are in the word 'encyclopedia'?", "How many vowels are in the word 'encyclopedia'?"),
        ("1. What is the product of the digits of 987654?\nExplanation...", "What is the product of the digits of 987654?"),
        ("**What is 12 squared plus the cube of 5?**", "What is 12 squared plus the cube of 5?"),
        ("12 apples cost 3 dollars each; how much do they cost in total?",
         "12 apples cost 3 dollars each; how much do they cost in total?"),
        ("```python\nprint(1)\n```", None),
        ("Short?", None),
        ("Write a Python function that sorts a list of numbers.", None),
        ("What is the sum of the first 100 odd numbers", None),  # no end: cut off
        ("", None),
    ],
)
def test_parse_proposal(reply: str, task: str | None) -> None:
    assert parse_proposal(reply)[0] == task


class FakeChat:
    """A chat model that answers with canned replies in turn and records what it was asked."""

    name = "fake"

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.calls: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]], *args: Any, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(messages)
        text = self.replies[(len(self.calls) - 1) % len(self.replies)]
        return SimpleNamespace(text=text, usage=SimpleNamespace(completion_tokens=len(text.split())))


def test_proposals_are_bounded_and_deduplicated() -> None:
    bench = sorted(bench_task_texts())
    assert len(bench) > 100
    model = FakeChat([
        "What is the sum of the squares of the integers from 1 to 25?",
        "what is the sum of the squares of the  integers from 1 to 25.",  # the same once normalised
        "```python\nprint(3)\n```",
        bench[0] + "?",  # a benchmark task
        "How many letters does the word 'encyclopedia' have?",
    ])
    texts, proposals = propose_tasks(model, 5, seed=0, exclude=bench)
    assert texts == [
        "What is the sum of the squares of the integers from 1 to 25?",
        "How many letters does the word 'encyclopedia' have?",
    ]
    assert len(model.calls) == len(proposals) == 15  # at most 3x the tasks asked for, then it stops
    verdicts = [p.verdict for p in proposals[:5]]
    assert verdicts == ["ok", "duplicate", "code", "a benchmark task", "ok"]
    shown = model.calls[0][1]["content"]
    assert shown.count("\n- ") == 3  # three seed examples from the families
    # it stops as soon as it has enough
    texts, proposals = propose_tasks(FakeChat(["What is 17 times 23, plus 4?", "What is 99 squared minus 1?"]), 2, seed=1)
    assert len(texts) == 2 and len(proposals) == 2


def test_an_example_shown_is_not_a_new_task() -> None:
    class Echo(FakeChat):
        def complete(self, messages: list[dict[str, str]], *args: Any, **kwargs: Any) -> SimpleNamespace:
            first = messages[1]["content"].split("\n- ")[1].split("\n")[0]
            self.replies = [first]
            return super().complete(messages)

    texts, proposals = propose_tasks(Echo([""]), 2, seed=0, max_attempts=4)
    assert texts == [] and {p.verdict for p in proposals} == {"copies an example"}


_PROGRAMS = {
    # 3 of 4 agree (one is off by one): kept, its three programs are the examples
    "What is the sum of the squares of the integers from 1 to 10?": [
        "print(sum(i * i for i in range(1, 11)))",
        "total = 0\nfor i in range(1, 11):\n    total += i ** 2\nprint(total)",
        "print(sum(i ** 2 for i in range(11)))",
        "print(sum(i * i for i in range(1, 10)))",
    ],
    # 2 against 2: no agreement
    "How many letters are in the word 'banana' that are not vowels?": [
        "print(sum(c not in 'aeiou' for c in 'banana'))",
        "print(len([c for c in 'banana' if c not in 'aeiou']))",
        "print(len(set('banana') - set('aeiou')))",
        "print(len({c for c in 'banana' if c not in 'aeiou'}))",
    ],
    # all four print a number they made up: nobody votes
    "What is the 40th Fibonacci number?": ["print(102334155)"] * 4,
}


@pytest.mark.slow
def test_the_sampling_stage_keeps_only_agreed_tasks(tmp_path: Path) -> None:
    from codeloop.selftrain.pipeline import SelftrainConfig, _Run, _stage_sample
    from codeloop.selftrain.tasks import Task

    tasks = [Task(f"gen-{i + 1}", "generated", text, None, "vote") for i, text in enumerate(_PROGRAMS)]

    class Programs(FakeChat):
        def complete(self, messages: list[dict[str, str]], *args: Any, **kwargs: Any) -> SimpleNamespace:
            task = next(t for t in _PROGRAMS if t in messages[-1]["content"])
            n = sum(1 for m in self.calls if task in m[-1]["content"])
            self.calls.append(messages)
            code = _PROGRAMS[task][n]
            return SimpleNamespace(text=f"```python\n{code}\n```", usage=SimpleNamespace(completion_tokens=9))

    config = SelftrainConfig(sources=("generated",), vote_agree=3, vote_samples=4)
    run = _Run(tmp_path, config, lambda _: None, None)
    samples = _stage_sample(run, "generated", list(tasks), Programs([]))
    assert len(samples) == 12
    assert [s.index for s in samples if s.verified] == [0, 1, 2]
    assert {s.task_id for s in samples if s.verified} == {"gen-1"}
    figures = json.loads((tmp_path / "report.json").read_text())["stages"]["sample"]
    assert figures["by_source"]["generated"]["agreed"] == 1
    assert figures["verified"] == 3 and figures["samples"] == 12
    # resuming redoes nothing
    again = _stage_sample(run, "generated", list(tasks), FakeChat(["unused"]))
    assert [s.to_dict() for s in again] == [s.to_dict() for s in samples]


def test_normalise_task() -> None:
    assert normalise_task("  What is  2+2? ") == normalise_task("what is 2+2")
