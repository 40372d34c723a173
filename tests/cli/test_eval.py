"""``codeloop eval humaneval`` as a user runs it: a real subprocess, real sandbox, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codeloop.evals.problems import Problem


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", "eval", "humaneval", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def _canonical(path: Path, problems: dict[str, Problem], count: int, extra: str = "") -> Path:
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution + extra} for p in list(problems.values())[:count]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_json_report(tmp_path: Path, problems: dict[str, Problem]) -> None:
    samples = _canonical(tmp_path / "canonical.jsonl", problems, 8)
    done = _cli("--samples", str(samples), "--json", "--k", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # exactly one JSON object on stdout
    assert (report["problems"], report["samples"], report["passed"], report["pass@1"]) == (8, 8, 8, 1.0)
    assert Path(report["results"]) == tmp_path / "canonical.jsonl_results.jsonl"
    assert "check: 8/8" in done.stderr  # progress as plain lines when not a terminal


def test_verbose_lists_failures_on_stderr(tmp_path: Path, problems: dict[str, Problem]) -> None:
    samples = tmp_path / "mixed.jsonl"
    rows = [{"task_id": "HumanEval/0", "completion": "    return 1 / 0\n"}, {"task_id": "HumanEval/1", "completion": "    pass\n"}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = _cli("--samples", str(samples), "--verbose", "--no-progress", "--json", cwd=tmp_path)
    assert done.returncode == 0
    assert json.loads(done.stdout)["passed"] == 0
    assert "HumanEval/0 #0: failed: ZeroDivisionError: division by zero" in done.stderr
    assert "HumanEval/1 #0: failed: AssertionError" in done.stderr


def test_table_report_and_limit(tmp_path: Path, problems: dict[str, Problem]) -> None:
    samples = _canonical(tmp_path / "canonical.jsonl", problems, 6)
    done = _cli("--samples", str(samples), "--limit", "3", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^passed\s+3/3$", done.stdout, re.MULTILINE), done.stdout
    assert "pass@1" in done.stdout
    assert "100.0%" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "missing.jsonl"], "no such file"),
        (["--samples", "bad.jsonl"], "bad.jsonl:2"),
        (["--samples", "unknown.jsonl"], "unknown task"),
        (["--samples", "ok.jsonl", "--k", "one"], "--k"),
        (["--samples", "ok.jsonl", "--limit", "0"], "--limit"),
        (["--samples", "ok.jsonl", "--out", "x.jsonl"], "give one of them"),
        (["--samples", "ok.jsonl", "--results", "ok.jsonl"], "the samples file itself"),
        (["--samples", "ok.jsonl", "--n", "0"], "--n"),
        (["--samples", "ok.jsonl", "--timeout", "-1"], "--timeout"),
    ],
)
def test_bad_input_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"task_id": "HumanEval/0", "completion": ""}\n{oops\n', encoding="utf-8")
    (tmp_path / "unknown.jsonl").write_text('{"task_id": "HumanEval/999", "completion": ""}\n', encoding="utf-8")
    (tmp_path / "ok.jsonl").write_text('{"task_id": "HumanEval/0", "completion": ""}\n', encoding="utf-8")
    done = _cli(*args, "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
    assert (tmp_path / "ok.jsonl").read_text(encoding="utf-8").count("\n") == 1  # input untouched


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_interrupted_run_resumes(tmp_path: Path, problems: dict[str, Problem]) -> None:
    # Each sample takes ~0.5 s to load, so the run is still going when we interrupt it.
    samples = _canonical(tmp_path / "slow.jsonl", problems, 10, extra="\nimport time\ntime.sleep(0.5)\n")
    results = tmp_path / "slow.jsonl_results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "codeloop", "eval", "humaneval", "--samples", str(samples), "--workers", "1", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a Ctrl-C as at a terminal: a suite started in the background (`... &`) inherits an
        # ignored SIGINT, which the child would keep, and the run would finish uninterrupted
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_text(encoding="utf-8").count("\n") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    saved = results.read_text(encoding="utf-8").count("\n")
    assert 2 <= saved < 10
    done = _cli("--samples", str(samples), "--workers", "2", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] == 10
    assert report["settings"]["resumed"] >= saved
    assert results.read_text(encoding="utf-8").count("\n") == 10
