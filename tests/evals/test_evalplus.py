"""EvalPlus files (HumanEval+ / MBPP+ JSONL) read with --data (the command line: tests/cli/test_eval_benchmarks.py).

The data file is written here in EvalPlus's format: ``task_id``, ``prompt``, ``entry_point``,
``canonical_solution``, ``base_input``/``plus_input`` (argument lists), ``atol``, and for a
record without inputs a ``test`` holding ``def check(candidate)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codeloop.evals.benchmarks.evalplus import load_evalplus
from codeloop.evals.errors import DatasetError
from codeloop.evals.parallel import check_all
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import sandbox_factory

HUMANEVAL_PLUS = {
    "task_id": "HumanEval/2",
    "prompt": 'def truncate_number(number: float) -> float:\n    """ Return the decimal part of the number.\n    >>> truncate_number(3.5)\n    0.5\n    """\n',
    "entry_point": "truncate_number",
    "canonical_solution": "    return number % 1.0\n",
    "contract": "\n    assert number > 0, \"invalid inputs\"  # $_CONTRACT_$\n",
    "base_input": [[3.5], [1.33], [123.456]],
    "plus_input": [[999.9999999], [0.04], [1e-300]],
    "atol": 1e-06,
}
MBPP_PLUS = {
    "task_id": "Mbpp/2",
    "prompt": '"""\nWrite a function to find the shared elements from the given two lists.\n'
    'assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"""\n',
    "entry_point": "similar_elements",
    "canonical_solution": "\ndef similar_elements(test_tup1, test_tup2):\n  return tuple(set(test_tup1) & set(test_tup2))\n",
    "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]], [[1, 2, 3, 4], [5, 4, 3, 7]]],
    "plus_input": [[[], [1]]],
    "atol": 0,
}
TEST_ONLY = {
    "task_id": "Custom/0",
    "prompt": "def add(a, b):\n",
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
}


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def plus_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "plus.jsonl", [HUMANEVAL_PLUS, MBPP_PLUS, TEST_ONLY])


def _verdicts(problems: dict[str, Problem], completions: dict[str, str]) -> dict[str, str]:
    samples = [Sample(task, 0, text) for task, text in completions.items()]
    return {v.task_id: v.result for v in check_all(samples, problems, sandbox_factory(timeout=10.0), timeout=5.0)}


def test_canonical_solutions_pass_and_wrong_ones_fail(plus_file: Path) -> None:
    problems = load_evalplus(plus_file)
    assert list(problems) == ["HumanEval/2", "Mbpp/2", "Custom/0"]
    right = _verdicts(problems, {t: p.canonical_solution for t, p in problems.items()})
    assert right == {t: "passed" for t in problems}
    wrong = _verdicts(
        problems,
        {
            "HumanEval/2": "    return number - int(number) + 1e-3\n",  # off by more than atol
            "Mbpp/2": "\ndef similar_elements(a, b):\n  return tuple(a)\n",
            "Custom/0": "    return a - b\n",
        },
    )
    assert all(r.startswith("failed: AssertionError") for r in wrong.values()), wrong
    assert "input #0" in wrong["Mbpp/2"]  # the failing input is named


def test_floats_within_atol_pass(plus_file: Path) -> None:
    problems = load_evalplus(plus_file)
    close = _verdicts(problems, {"HumanEval/2": "    return number % 1.0 + 1e-9\n"})
    assert close == {"HumanEval/2": "passed"}


def test_the_sample_cannot_replace_the_reference(plus_file: Path) -> None:
    """A sample cannot swap the test's helpers for its own, nor empty the list of inputs."""
    problems = load_evalplus(plus_file)
    lenient = "    return 0.0\n\ndef _evalplus_same(*args):\n    return True\n"
    no_inputs = "    return 0.0\n\nimport json\njson.loads = lambda text: []\n"
    verdicts = _verdicts(problems, {"HumanEval/2": lenient})
    assert verdicts["HumanEval/2"].startswith("failed: AssertionError: input #0"), verdicts
    verdicts = _verdicts(problems, {"HumanEval/2": no_inputs})
    assert verdicts["HumanEval/2"] == "failed: AssertionError: the test inputs were tampered with", verdicts


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"task_id": "X/0", "prompt": "def f():\n"}, "lacks the text field(s) entry_point, canonical_solution"),
        ({**TEST_ONLY, "test": None}, "has no test inputs"),
        ({**HUMANEVAL_PLUS, "base_input": [3.5]}, "base_input must be a list of argument lists"),
        ({**HUMANEVAL_PLUS, "atol": "tiny"}, "atol must be a number"),
    ],
)
def test_bad_records_are_clear_errors(tmp_path: Path, record: dict[str, Any], message: str) -> None:
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_evalplus(_write(tmp_path / "bad.jsonl", [record]))
