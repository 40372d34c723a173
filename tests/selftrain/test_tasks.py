"""Self-training tasks: reproducible, answers right, never a benchmark task."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from codeloop.selftrain.tasks import FAMILIES, generate_tasks, read_tasks, write_tasks
from codeloop.selftrain.verify import output_matches

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_texts() -> list[str]:
    texts = []
    for directory in ("tasks", "heldout", "fresh"):
        for path in sorted((BENCH / directory).glob("*.jsonl")):
            texts += [json.loads(line)["task"] for line in path.read_text().splitlines() if line.strip()]
    return texts


def test_same_seed_same_tasks_and_every_family_used() -> None:
    a, b = generate_tasks(60, seed=3), generate_tasks(60, seed=3)
    assert a == b
    assert generate_tasks(60, seed=4) != a
    assert {t.family for t in a} == set(FAMILIES)
    assert len({t.task for t in a}) == 60


def test_no_generated_task_is_a_benchmark_task() -> None:
    bench = {" ".join(t.lower().split()) for t in _bench_texts()}
    assert len(bench) > 100  # the three sets were found
    for task in generate_tasks(400, seed=0):
        assert " ".join(task.task.lower().split()) not in bench


def test_answers_are_right_on_independent_recomputation() -> None:
    for task in generate_tasks(200, seed=1):
        text = task.task
        if task.family == "gcd3":
            nums = [int(x) for x in text.rstrip(".").replace(",", " ").split() if x.isdigit()]
            assert task.answer == math.gcd(*nums)
        elif task.family == "date-gap":
            a, b = (dt.date.fromisoformat(w.rstrip("?")) for w in text.split() if w[:2] in ("19", "20") and "-" in w)
            assert task.answer == (b - a).days
        elif task.family == "reverse-word":
            word = text.split("'")[1]
            assert task.answer == "".join(reversed(word))
        elif task.family == "distinct-letters":
            assert task.answer == len(set(text.split("'")[1]))


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    tasks = generate_tasks(10, seed=2)
    write_tasks(tasks, tmp_path / "t.jsonl")
    assert read_tasks(tmp_path / "t.jsonl") == tasks
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        read_tasks(tmp_path / "bad.jsonl")


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown task families: nope"):
        generate_tasks(3, families=["nope"])


@pytest.mark.parametrize(
    ("stdout", "answer", "check", "ok"),
    [
        ("working...\n42\n", 42, "number", True),
        ("42\nthe answer is 41\n", 42, "number", False),  # only the last line counts
        ("Total: 1,234\n", 1234, "number", True),
        ("479001600\n", 479001601, "number", False),  # integers compare exactly
        ("mean = 3.14\n", 3.14159, "number", True),  # printed rounding accepted
        ("True\n", True, "bool", True),
        ("False\n", True, "bool", False),
        ("The weekday is Tuesday\n", "Tuesday", "text", True),
        ("", 1, "number", False),
    ],
)
def test_output_matching(stdout: str, answer: object, check: str, ok: bool) -> None:
    assert output_matches(stdout, answer, check) is ok
