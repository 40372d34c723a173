"""The worked-example library: every example is true (its code prints what it claims), the
closest example is chosen for a task, and no example is a benchmark task in disguise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codeloop.agent import Agent, Strategy
from codeloop.agent import examples as lib
from codeloop.agent.prompts import few_shot_messages

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _code(reply: str) -> str:
    match = re.fullmatch(r"```python\n(.*)\n```", reply, re.DOTALL)
    assert match, reply
    return match.group(1)


@pytest.mark.parametrize("example", [*lib.LIBRARY, lib.REPAIR], ids=lambda e: e.task[:40])
def test_each_example_shows_what_its_code_really_does(example: lib.WorkedExample) -> None:
    for reply, shown, failed in example.exchanges:
        proc = subprocess.run(
            [sys.executable, "-c", _code(reply)], capture_output=True, text=True, timeout=60
        )
        if failed:
            assert proc.returncode != 0
            assert shown.splitlines()[-1] == proc.stderr.strip().splitlines()[-1]
        else:
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.strip() == shown
    last_output = example.exchanges[-1][1]
    assert last_output in example.answer  # the final answer states the output


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("What is the smallest prime number above 5000?", "prime"),
        ("How many divisors does 840 have?", "divisors"),
        ("What is the sum of the digits of 3 to the power of 30?", "digits"),
        ("How many Fridays were there in 2021?", "Mondays"),
        ("A pandas DataFrame has columns a=[1, 2] and b=[3, 4]. What is the mean of b?", "table"),
        ("What is 17 * 23 + 456?", "squares"),  # shares no word with a skill: the general example
    ],
)
def test_the_closest_example_is_chosen(task: str, expected: str) -> None:
    (chosen,) = lib.select(task)
    assert expected in chosen.task


def test_k_examples_come_best_last() -> None:
    two = lib.select("How many prime divisors does 360 have?", k=2)
    assert len(two) == 2
    assert two[0] is not two[1]
    assert two[-1] is lib.select("How many prime divisors does 360 have?")[0]


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_no_example_is_a_benchmark_task() -> None:
    bench_tasks = {
        _normal(json.loads(line)["task"])
        for path in BENCH.glob("*/tasks.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert len(bench_tasks) >= 80
    for example in [*lib.LIBRARY, lib.REPAIR]:
        assert _normal(example.task) not in bench_tasks, example.task


def test_the_repair_example_comes_first_and_the_chosen_one_last() -> None:
    messages = few_shot_messages("Is 7919 a prime number? Answer True or False.")
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users[0].startswith(lib.REPAIR.task)
    assert any(m["content"].startswith("What is the largest prime") for m in messages)
    assert messages[-1]["role"] == "assistant"
    # Without a task (or with selection off), the same two fixed examples for every task.
    fixed = few_shot_messages()
    assert fixed[0]["content"].startswith(lib.GENERAL.task)


def test_the_agent_selects_per_task_unless_told_not_to() -> None:
    agent = Agent(model=object(), sandbox=object())  # type: ignore[arg-type]
    prime = agent.initial_messages("What is the 10th prime number?")
    dates = agent.initial_messages("How many days are there between 2024-01-01 and 2024-07-04?")
    assert prime[1:-1] != dates[1:-1]
    fixed = Agent(model=object(), sandbox=object(), strategy=Strategy(select_examples=False))  # type: ignore[arg-type]
    assert (
        fixed.initial_messages("What is the 10th prime number?")[1:-1] == fixed.initial_messages("x?")[1:-1]
    )
    assert Agent(model=object(), sandbox=object(), strategy=Strategy.baseline()).example_messages("x?") == []  # type: ignore[arg-type]


def test_a_conversation_keeps_its_first_turns_examples() -> None:
    """Later turns see the same examples (chosen for the first turn), so the cached prefix holds."""
    agent = Agent(model=object(), sandbox=object())  # type: ignore[arg-type]
    first_task = "What is the largest prime below 200?"
    history = [
        {"role": "user", "content": first_task},
        {"role": "assistant", "content": "It is 199."},
    ]
    later = agent.initial_messages("How many days are there between 2024-01-01 and 2024-07-04?", history)
    first = agent.initial_messages(first_task)
    n = len(agent.example_messages(first_task))
    assert later[: 1 + n] == first[: 1 + n]
    assert any("prime" in m["content"] for m in later[1 : 1 + n])
    assert later[1 + n : 3 + n] == history


def test_the_restart_drops_exactly_the_examples(sandbox: object, fake_model: type) -> None:
    model = fake_model(
        "```python\nprint(1/0)\n```", "```python\nprint(1/0)\n```", "```python\nprint(7)\n```", "It is 7."
    )
    agent = Agent(model, sandbox=sandbox)  # type: ignore[arg-type]
    task = "What is the smallest prime above 100?"
    result = agent.run(task)
    restarted = model.calls[2]["messages"]
    assert [m["role"] for m in restarted] == ["system", "user"]
    assert restarted[1]["content"].startswith(task)
    assert "Note: " in restarted[1]["content"]
    assert result.answer
