"""Evaluation and batch tasks on a real local Ray cluster: the same files as a local run, and a
killed actor survived with no result lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codeloop.agent import Limits, Strategy
from codeloop.evals import HumanEvalOptions, load_humaneval, run_humaneval
from codeloop.evals.generation import GenerationSettings
from codeloop.evals.problems import Problem
from codeloop.evals.progress import Progress
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.runner import generate_samples, meta_path
from codeloop.scale import LocalCluster, RayEvalMap, RayOptions, RayTaskMap
from codeloop.scale.batch import LocalTaskMap, load_tasks, run_batch

pytestmark = pytest.mark.slow


def write_samples(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _actor_pid(ray: ModuleType, handle: Any) -> int:
    """The process id of an actor, from Ray's own record of it (the GCS actor table)."""
    from ray._private import state

    return int(state.actors(actor_id=handle._actor_id.hex())["Pid"])


def test_canonical_samples_on_ray_equal_the_local_run(
    ray_driver: ModuleType, cluster: LocalCluster, canonical_samples: Path, tmp_path: Path
) -> None:
    local_samples = write_samples(tmp_path / "local.jsonl", _rows(canonical_samples))
    local = run_humaneval(HumanEvalOptions(samples=local_samples, progress=False))
    with RayEvalMap.open(RayOptions(cluster.address, cpus=1), model=None, load_model=False) as mapper:
        assert len(mapper.pool.actors) == 2
        assert all(cluster.owns(info["pid"]) for info in mapper.pool.infos)  # actors run in the cluster
        remote = run_humaneval(HumanEvalOptions(samples=canonical_samples, progress=False), mapper=mapper)
        assert sum(mapper.pool.stats.answers.values()) == 164
        assert all(mapper.pool.stats.answers[i] > 0 for i in range(2))  # both actors did work
    assert remote.passed == local.passed == 164
    local_results = Path(str(local_samples) + "_results.jsonl").read_text(encoding="utf-8")
    remote_results = Path(str(canonical_samples) + "_results.jsonl").read_text(encoding="utf-8")
    assert remote_results == local_results  # the same file, byte for byte


def _slow_canonical(problems: dict[str, Problem], count: int) -> list[dict[str, object]]:
    """Canonical solutions that first sleep, so an actor is always in the middle of a check."""
    chosen = list(problems.values())[:count]
    return [
        {"task_id": p.task_id, "completion": "    __import__('time').sleep(0.3)\n" + p.canonical_solution} for p in chosen
    ]


class _KillOnce(Progress):
    """A progress display that, at the first finished check, kills one actor's process."""

    def __init__(self, total: int, kill: Any) -> None:
        super().__init__(total, "check", enabled=False)
        self.kill = kill
        self.killed: int | None = None

    def advance(self, count: int = 1, note: str | None = None) -> None:
        super().advance(count, note)
        if self.killed is None:
            self.killed = self.kill()


def test_a_killed_actor_loses_and_duplicates_nothing(
    ray_driver: ModuleType, cluster: LocalCluster, problems: dict[str, Problem], tmp_path: Path
) -> None:
    records = _slow_canonical(problems, 16)
    local_samples = write_samples(tmp_path / "local.jsonl", records)
    remote_samples = write_samples(tmp_path / "remote.jsonl", records)
    local = run_humaneval(HumanEvalOptions(samples=local_samples, progress=False))
    from codeloop.evals.evaluate import evaluate_samples
    from codeloop.evals.results import default_results_path
    from codeloop.evals.samples import load_samples
    from codeloop.evals.sessions import sandbox_factory

    with RayEvalMap.open(RayOptions(cluster.address, cpus=1), model=None, load_model=False) as mapper:
        victim = mapper.pool.actors[0]

        def kill() -> int:
            pid = _actor_pid(ray_driver, victim)
            assert cluster.owns(pid), "the actor's process is not one the test cluster started"
            os.kill(pid, signal.SIGKILL)
            return pid

        progress = _KillOnce(len(records), kill)
        samples = load_samples(remote_samples, problems)
        report = evaluate_samples(
            samples,
            problems,
            default_results_path(remote_samples),
            sandbox_factory(timeout=5.0),
            progress=progress,
            mapper=mapper,
        )
        stats = mapper.pool.stats
        assert progress.killed is not None
        assert stats.actor_losses == 1 and stats.retried >= 1  # it died with calls in flight, redone elsewhere
        assert sum(stats.answers.values()) == len(records)
        new_pid = mapper.pool.pids()[0]  # Ray restarted it: a new process
        assert new_pid != progress.killed
    rows = _rows(default_results_path(remote_samples))
    assert [(r["task_id"], r["completion_id"]) for r in rows] == [(r["task_id"], 0) for r in records]  # each once
    assert report.passed == local.passed == len(records)
    assert default_results_path(remote_samples).read_text() == default_results_path(local_samples).read_text()


def _without_timing(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "seconds"}


@pytest.mark.model
def test_generation_on_ray_equals_local(ray_driver: ModuleType, cluster: LocalCluster, tmp_path: Path) -> None:
    from codeloop.llm import get_model

    options = dict(limit=4, ks=(1,), generation=GenerationSettings(max_tokens=96, seed=7), progress=False)
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    model = get_model("smollm2-135m", n_threads=1)
    local = run_humaneval(HumanEvalOptions(out=local_out, **options), model=model, model_name=model.name)  # type: ignore[arg-type]
    with RayEvalMap.open(RayOptions(cluster.address, cpus=1), model="smollm2-135m") as mapper:
        assert mapper.model_name == "smollm2-135m"
        assert [info["n_threads"] for info in mapper.pool.infos] == [1, 1]
        victim, killed = mapper.pool.actors[1], []

        def kill_once(sample: object) -> None:  # at the first sample saved, kill an actor mid-generation
            if not killed:
                pid = _actor_pid(ray_driver, victim)
                assert cluster.owns(pid)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        problems = load_humaneval()
        settings = GenerationSettings(max_tokens=96, seed=7, style=PromptStyle.CHATML)
        generate_samples(
            list(problems.values())[:4], problems, None, settings, remote_out,
            n=1, model_name="smollm2-135m", open_session=None, on_sample=kill_once, mapper=mapper,
        )  # fmt: skip
        assert killed and mapper.pool.stats.actor_losses == 1
        # The same command as the local run: the samples are all there (resumed), only checks remain.
        remote = run_humaneval(HumanEvalOptions(out=remote_out, **options), mapper=mapper)  # type: ignore[arg-type]
    assert [_without_timing(r) for r in _rows(remote_out)] == [_without_timing(r) for r in _rows(local_out)]
    assert meta_path(remote_out).read_text() == meta_path(local_out).read_text()
    assert remote.passed == local.passed
    local_results = [_without_timing(r) for r in _rows(Path(str(local_out) + "_results.jsonl"))]
    assert [_without_timing(r) for r in _rows(Path(str(remote_out) + "_results.jsonl"))] == local_results


def _essence(row: dict[str, Any]) -> dict[str, Any]:
    """What a run decided (timings aside): status, answer, and each step's code and output."""
    steps = [(s.get("model_text"), s.get("code"), (s.get("result") or {}).get("stdout")) for s in row["steps"]]
    return {"id": row["id"], "status": row["status"], "answer": row["answer"], "steps": steps}


@pytest.mark.model
def test_batch_on_ray_equals_local_and_resumes(ray_driver: ModuleType, cluster: LocalCluster, tmp_path: Path) -> None:
    from codeloop.llm import get_model

    tasks_path = tmp_path / "tasks.jsonl"
    tasks_path.write_text(
        "\n".join(
            json.dumps(t)
            for t in [
                {"id": "pow", "task": "What is 2**20?", "answer": 1048576},
                {"id": "sum", "task": "What is the sum of the integers from 1 to 50?"},
                {"task": "How many letters are in the word 'scale'?"},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    tasks = load_tasks(tasks_path)
    limits, strategy = Limits(max_steps=3, max_seconds=600.0), Strategy()
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    local = run_batch(tasks, local_out, LocalTaskMap(get_model("smollm2-135m", n_threads=1)), limits=limits, strategy=strategy)
    with RayTaskMap.open(RayOptions(cluster.address, cpus=1), model="smollm2-135m") as mapper:
        # A first run stopped after one task, then the same command again: it finishes the rest.
        first = run_batch(tasks[:1], remote_out, mapper, limits=limits, strategy=strategy)
        assert first.ran == 1
        again = run_batch(tasks, remote_out, mapper, limits=limits, strategy=strategy)
        assert (again.resumed, again.ran) == (1, 2)
    local_rows, remote_rows = _rows(local_out), _rows(remote_out)
    assert [r["id"] for r in remote_rows] == ["pow", "sum", "3"]  # in order, each once
    assert remote_rows[0]["input"] == {"answer": 1048576}
    assert [_essence(r) for r in remote_rows] == [_essence(r) for r in local_rows]
    assert local.answered == again.answered


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=600,
    )


def test_eval_command_with_ray(cluster: LocalCluster, canonical_samples: Path, tmp_path: Path) -> None:
    proc = _cli(
        cluster.env, tmp_path, "eval", "humaneval", "--samples", str(canonical_samples), "--limit", "20", "--json",
        "--no-progress", "--ray", cluster.address, "--ray-actors", "2", "--ray-cpus", "0.5",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] == 20
    assert "Traceback" not in proc.stderr


def test_eval_command_refuses_more_actors_than_the_cluster_holds(cluster: LocalCluster, canonical_samples: Path, tmp_path: Path) -> None:
    proc = _cli(
        cluster.env, tmp_path, "eval", "humaneval", "--samples", str(canonical_samples), "--limit", "2",
        "--ray", cluster.address, "--ray-actors", "3", "--ray-cpus", "1",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "3 actors of 1 CPUs need 3 CPUs; the cluster has 2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_wrong_token_is_refused_with_a_clear_error(cluster: LocalCluster, canonical_samples: Path, tmp_path: Path) -> None:
    env = {**cluster.env, "RAY_AUTH_TOKEN": "not-the-token"}
    proc = _cli(env, tmp_path, "eval", "humaneval", "--samples", str(canonical_samples), "--limit", "2", "--ray", cluster.address)
    assert proc.returncode == 1
    assert "cannot join the Ray cluster" in proc.stderr
    assert "Traceback" not in proc.stderr
