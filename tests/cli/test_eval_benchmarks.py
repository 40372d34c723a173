"""``codeloop eval humaneval-infill`` and ``codeloop eval evalplus`` as a user runs them: real
subprocesses, the real sandbox, a small data file in EvalPlus's format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HUMANEVAL_PLUS = {
    "task_id": "HumanEval/2",
    "prompt": "def truncate_number(number: float) -> float:\n    \"\"\" Return the decimal part of the number. \"\"\"\n",
    "entry_point": "truncate_number",
    "canonical_solution": "    return number % 1.0\n",
    "base_input": [[3.5], [1.33], [123.456]],
    "plus_input": [[999.9999999], [0.04]],
    "atol": 1e-06,
}
MBPP_PLUS = {
    "task_id": "Mbpp/2",
    "prompt": '"""\nWrite a function to find the shared elements from the given two lists.\n"""\n',
    "entry_point": "similar_elements",
    "canonical_solution": "\ndef similar_elements(test_tup1, test_tup2):\n  return tuple(set(test_tup1) & set(test_tup2))\n",
    "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]],
    "plus_input": [[[], [1]]],
    "atol": 0,
}


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def plus_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "plus.jsonl", [HUMANEVAL_PLUS, MBPP_PLUS])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", "eval", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_cli_checks_an_evalplus_samples_file(tmp_path: Path, plus_file: Path) -> None:
    samples = _write(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "HumanEval/2", "completion": HUMANEVAL_PLUS["canonical_solution"]},
            {"task_id": "Mbpp/2", "completion": "\ndef similar_elements(a, b):\n  return ()\n"},
        ],
    )
    done = _cli("evalplus", "--data", str(plus_file), "--samples", str(samples), "--json", "--k", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["benchmark"] == "evalplus"
    assert (report["samples"], report["passed"]) == (2, 1)
    assert report["settings"]["data"] == str(plus_file.resolve())


def test_cli_checks_infill_samples(tmp_path: Path) -> None:
    from codeloop.evals.benchmarks import HumanEvalInfill

    tasks = list(HumanEvalInfill("multi-line").load().values())[:5]
    rows = [{"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks]
    rows[0]["completion"] = "    pass\n"
    samples = _write(tmp_path / "infill.jsonl", rows)
    done = _cli("humaneval-infill", "--span", "multi-line", "--samples", str(samples), "--json", "--k", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["benchmark"] == "humaneval-infill-multi-line"
    assert (report["samples"], report["passed"]) == (5, 4)
    # the single-line benchmark does not know the multi-line task ids
    wrong_span = _cli("humaneval-infill", "--samples", str(samples), "--no-progress", cwd=tmp_path)
    assert wrong_span.returncode == 2 and "unknown task 'MultiLineInfilling/HumanEval/0'" in wrong_span.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evalplus", "--samples", "s.jsonl"], "give --data PATH"),
        (["evalplus", "--data", "nowhere.jsonl", "--samples", "s.jsonl"], "no such file"),
        (["humaneval", "--data", "s.jsonl", "--samples", "s.jsonl"], "goes with the evalplus benchmark"),
        (["humaneval", "--span", "multi-line", "--samples", "s.jsonl"], "--span picks the humaneval-infill variant"),
        (["humaneval-infill", "--mode", "repair"], "does not support --mode repair"),
        (["humaneval-infill", "--prompt-style", "chatml", "--model", "fake"], "its prompt style is fim"),
        (["humaneval", "--prompt-style", "fim", "--model", "fake"], "is for fill-in-the-middle"),
    ],
)
def test_bad_benchmark_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    _write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    done = _cli(*args, "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stdout == ""
    assert "Traceback" not in done.stderr
