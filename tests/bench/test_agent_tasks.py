"""The agent benchmark's task files and answer checker: every known answer is accepted when
stated plainly, and plausible wrong answers are refused (a checker that accepts anything would
make the success rate meaningless)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench_scripts import BENCH, load_bench

SETS = [BENCH / "tasks", BENCH / "heldout", BENCH / "fresh"]


bench = load_bench("agent_tasks")
ALL = [t for folder in SETS for t in bench.load_tasks(folder)]


def _stated(task: dict) -> str:
    answer = task["answer"]
    if task["check"] == "bool":
        return str(answer)
    if task["check"] == "letter":
        return f"The letter '{answer}' occurs most often."
    return f"The answer is {answer}."


def test_every_set_is_there_and_ids_are_unique() -> None:
    assert all(len(bench.load_tasks(folder)) >= 30 for folder in SETS)
    ids = [t["id"] for t in ALL]
    assert len(ids) == len(set(ids))
    assert {t["check"] for t in ALL} <= {"number", "text", "bool", "letter", "list"}


@pytest.mark.parametrize("task", ALL, ids=[t["id"] for t in ALL])
def test_the_known_answer_is_accepted(task: dict) -> None:
    assert bench.check_answer(task, _stated(task))


@pytest.mark.parametrize("task", ALL, ids=[t["id"] for t in ALL])
def test_a_wrong_answer_is_refused(task: dict) -> None:
    answer, kind = task["answer"], task["check"]
    if kind == "number":
        wrong = f"The answer is {answer + 1}."  # exact: 20! + 1, not a rounded float
    elif kind == "bool":
        wrong = str(not answer)
    elif kind == "list":
        wrong = f"The answer is {list(reversed(answer))}."
    else:
        wrong = "The answer is zzz."
    assert not bench.check_answer(task, wrong)
    assert not bench.check_answer(task, "")


def test_numbers_from_the_task_itself_do_not_count_as_the_answer() -> None:
    task = {"task": "What is 12 plus 0?", "answer": 12, "check": "number"}
    assert not bench.check_answer(task, "12 plus 0 is 13")
    assert bench.check_answer(task, "It is 12.")


def test_an_unknown_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no tasks"):
        bench.main(["--tasks", str(tmp_path)])
