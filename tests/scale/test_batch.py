"""The batch runner and the pool's arithmetic, without a cluster: input checks, resume, settings."""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from codeloop.agent import Limits, Strategy
from codeloop.scale import ScaleError, plan_actors
from codeloop.scale.batch import BatchInputError, default_out_path, load_tasks, run_batch


class RecordingMap:
    """A task map that answers each task with its length and records what it was asked."""

    model_name = "fake-model"

    def __init__(self, stop_after: int | None = None) -> None:
        self.asked: list[str] = []
        self.stop_after = stop_after

    def run(self, tasks: Sequence[str], limits: Limits, strategy: Strategy) -> Generator[dict[str, Any], None, None]:
        for task in tasks:
            if self.stop_after is not None and len(self.asked) >= self.stop_after:
                raise KeyboardInterrupt
            self.asked.append(task)
            yield {"id": None, "task": task, "model": self.model_name, "status": "answered", "answer": str(len(task)), "steps": []}


def _tasks(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_tasks_file_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match="task 2 has no non-empty string 'task'"):
        load_tasks(_tasks(tmp_path, '{"task": "a"}', '{"id": "x"}'))
    with pytest.raises(BatchInputError, match="task 2 repeats the id 'a' of task 1"):
        load_tasks(_tasks(tmp_path, '{"id": "a", "task": "one"}', '{"id": "a", "task": "two"}'))
    with pytest.raises(BatchInputError, match=r"tasks.jsonl:2: not valid JSON"):
        load_tasks(_tasks(tmp_path, '{"task": "a"}', "not json"))
    with pytest.raises(BatchInputError, match="holds no tasks"):
        load_tasks(_tasks(tmp_path, ""))
    with pytest.raises(BatchInputError, match="no such file"):
        load_tasks(tmp_path / "missing.jsonl")


def test_ids_default_to_line_numbers_and_extra_fields_are_kept(tmp_path: Path) -> None:
    tasks = load_tasks(_tasks(tmp_path, '{"task": "first", "answer": 3}', '{"id": 7, "task": "second"}'))
    assert [(t.id, t.task, t.extra) for t in tasks] == [("1", "first", {"answer": 3}), ("7", "second", {})]
    assert default_out_path(tmp_path / "tasks.jsonl") == tmp_path / "tasks.results.jsonl"


def test_an_interrupted_batch_resumes_without_repeating_or_losing_a_task(tmp_path: Path) -> None:
    tasks = load_tasks(_tasks(tmp_path, *(json.dumps({"id": f"t{i}", "task": "x" * (i + 1)}) for i in range(5))))
    out = tmp_path / "out.jsonl"
    limits, strategy = Limits(), Strategy()
    first = RecordingMap(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_batch(tasks, out, first, limits=limits, strategy=strategy)
    with out.open("a", encoding="utf-8") as f:
        f.write('{"id": "t2", "task": "xx')  # a line torn by the crash
    second = RecordingMap()
    summary = run_batch(tasks, out, second, limits=limits, strategy=strategy)
    assert second.asked == ["xxx", "xxxx", "xxxxx"]  # only what was left
    assert (summary.resumed, summary.ran, summary.answered) == (2, 3, 5)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["t0", "t1", "t2", "t3", "t4"]
    assert [r["answer"] for r in rows] == ["1", "2", "3", "4", "5"]


def test_a_batch_with_other_settings_is_refused(tmp_path: Path) -> None:
    tasks = load_tasks(_tasks(tmp_path, '{"task": "a"}'))
    out = tmp_path / "out.jsonl"
    run_batch(tasks, out, RecordingMap(), limits=Limits(), strategy=Strategy())
    with pytest.raises(BatchInputError, match=r"other settings.*max_steps"):
        run_batch(tasks, out, RecordingMap(), limits=Limits(max_steps=2), strategy=Strategy())
    stray = tmp_path / "stray.jsonl"
    stray.write_text('{"x": 1}\n', encoding="utf-8")
    with pytest.raises(BatchInputError, match="not a codeloop batch"):
        run_batch(tasks, stray, RecordingMap(), limits=Limits(), strategy=Strategy())


def test_plan_actors() -> None:
    assert plan_actors(2.0, 1.0, None) == 2
    assert plan_actors(2.0, 0.5, None) == 4
    assert plan_actors(16.0, 1.0, 3) == 3
    with pytest.raises(ScaleError, match="3 actors of 1 CPUs need 3 CPUs; the cluster has 2"):
        plan_actors(2.0, 1.0, 3)
    with pytest.raises(ScaleError, match="not enough for one actor"):
        plan_actors(1.0, 2.0, None)
    with pytest.raises(ScaleError, match="must be positive"):
        plan_actors(2.0, 0.0, None)


def test_run_batch_command_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codeloop.cli import main

    assert main(["run", "--batch", str(tmp_path / "none.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    tasks = _tasks(tmp_path, '{"task": "a"}')
    assert main(["run", "--batch", str(tasks), "--out", str(tasks)]) == 2
    assert "is the tasks file itself" in capsys.readouterr().err
    assert main(["run", "--ray", "127.0.0.1:1", "What is 1+1?"]) == 2
    assert "--ray runs a --batch" in capsys.readouterr().err


def test_an_address_where_nothing_listens_fails_at_once() -> None:
    import socket

    from codeloop.scale import connect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(ScaleError, match=f"cannot join the Ray cluster at 127.0.0.1:{port}: nothing answers there"):
            connect(f"127.0.0.1:{port}")
