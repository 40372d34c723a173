"""Many agent tasks in one run: a JSONL of tasks in, a JSONL of results out, resumable.

``codeloop run --batch TASKS.jsonl`` runs every task through the agent loop, here (one model,
one task after another) or on a Ray cluster (``--ray ADDRESS``: a pool of actors, each with its
own model). Each task runs in a fresh sandbox session, as ``codeloop run`` does. Results are
appended in the tasks' order as they come, next to a ``.meta.json`` with the settings, so an
interrupted batch continues where it stopped when run again, and a batch with other settings is
refused rather than mixed into the same file. Batch runs are not stored in the history: the
results file is their record.

A task line is ``{"id": "...", "task": "..."}``; ``id`` may be left out (the line number is
used), other fields are kept in the result's ``input``. A result line is the task's ``id``,
then the fields of ``codeloop run --json`` (status, answer, steps, usage, timings).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codeloop.agent import Agent, AgentResult, Limits, Strategy, TaskStatus
from codeloop.errors import CodeloopError
from codeloop.evals.errors import EvalInputError
from codeloop.evals.jsonl import JsonlAppender, read_jsonl
from codeloop.evals.progress import Progress
from codeloop.evals.resume import check_meta

__all__ = ["BatchInputError", "BatchSummary", "BatchTask", "LocalTaskMap", "TaskMap", "load_tasks", "run_batch"]


class BatchInputError(CodeloopError):
    """The tasks file, the results file or the settings are not usable as given."""


@dataclass(frozen=True)
class BatchTask:
    id: str
    task: str
    extra: dict[str, Any] = field(default_factory=dict)


def load_tasks(path: str | os.PathLike[str]) -> list[BatchTask]:
    """The tasks of a JSONL file; a bad line or a repeated id is a clear error naming the line."""
    tasks: list[BatchTask] = []
    seen: dict[str, int] = {}
    try:
        records = list(read_jsonl(path))
    except EvalInputError as e:
        raise BatchInputError(str(e)) from e
    for number, record in enumerate(records, start=1):
        task = record.get("task")
        if not isinstance(task, str) or not task.strip():
            raise BatchInputError(f"{path}: task {number} has no non-empty string 'task'")
        raw_id = record.get("id", str(number))
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or not str(raw_id).strip():
            raise BatchInputError(f"{path}: task {number} has an 'id' that is not a string or a number")
        task_id = str(raw_id)
        if task_id in seen:
            raise BatchInputError(f"{path}: task {number} repeats the id {task_id!r} of task {seen[task_id]}")
        seen[task_id] = number
        extra = {k: v for k, v in record.items() if k not in ("id", "task")}
        tasks.append(BatchTask(task_id, task.strip(), extra))
    if not tasks:
        raise BatchInputError(f"{path} holds no tasks")
    return tasks


class TaskMap(Protocol):
    """Where tasks run; results come back in the tasks' order, as ``AgentResult.to_dict()``."""

    model_name: str

    def run(self, tasks: Sequence[str], limits: Limits, strategy: Strategy) -> Generator[dict[str, Any], None, None]: ...


class LocalTaskMap:
    """This process: one model, one task after another, each in a fresh sandbox session."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.model_name = str(getattr(model, "name", ""))

    def run(self, tasks: Sequence[str], limits: Limits, strategy: Strategy) -> Generator[dict[str, Any], None, None]:
        for task in tasks:
            with Agent(self.model, limits=limits, strategy=strategy) as agent:
                result = agent.run(task)
            if result.status is TaskStatus.INTERRUPTED:
                raise KeyboardInterrupt  # Ctrl-C: the half-done task is not a result
            yield result.to_dict()


@dataclass
class BatchSummary:
    out: str
    total: int = 0
    resumed: int = 0  # results already in the file from an earlier run
    ran: int = 0
    answered: int = 0  # over all results, resumed ones included
    statuses: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_out_path(tasks_path: str | os.PathLike[str]) -> Path:
    """``tasks.jsonl`` -> ``tasks.results.jsonl`` beside it."""
    p = Path(tasks_path)
    stem = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return p.with_name(stem + ".results.jsonl")


def _done_rows(out: Path, tasks: Sequence[BatchTask]) -> dict[str, dict[str, Any]]:
    """Rows of an earlier run that still match a task (same id and text)."""
    if not out.exists():
        return {}
    wanted = {t.id: t.task for t in tasks}
    done: dict[str, dict[str, Any]] = {}
    try:
        for row in read_jsonl(out, tolerate_torn_tail=True):
            task_id = row.get("id")
            if isinstance(task_id, str) and wanted.get(task_id) == row.get("task") and isinstance(row.get("status"), str):
                done[task_id] = row
    except EvalInputError as e:
        raise BatchInputError(str(e)) from e
    return done


def result_row(task: BatchTask, result: dict[str, Any]) -> dict[str, Any]:
    row = {"id": task.id, **{k: v for k, v in result.items() if k != "id"}}
    row["task"] = task.task
    if task.extra:
        row["input"] = task.extra
    return row


def run_batch(
    tasks: Sequence[BatchTask],
    out: str | os.PathLike[str],
    mapper: TaskMap,
    *,
    limits: Limits,
    strategy: Strategy,
    progress: Progress | None = None,
) -> BatchSummary:
    """Run every task not already in ``out`` and append its result row; return the counts."""
    path = Path(out)
    meta = {"model": mapper.model_name, "limits": asdict(limits), "strategy": asdict(strategy)}
    try:
        check_meta(path, meta, kind="batch")
    except EvalInputError as e:
        raise BatchInputError(str(e)) from e
    done = _done_rows(path, tasks)
    todo = [t for t in tasks if t.id not in done]
    summary = BatchSummary(str(path), total=len(tasks), resumed=len(tasks) - len(todo))
    if progress is not None:
        progress.total, progress.done = len(tasks), summary.resumed
    results = mapper.run([t.task for t in todo], limits, strategy)
    try:
        with JsonlAppender(path) as appender, closing(results):
            for task, result in zip(todo, results, strict=False):
                row = result_row(task, result)
                appender.append(row)
                done[task.id] = row
                summary.ran += 1
                if progress is not None:
                    progress.advance(note=f"{task.id}: {row.get('status')}")
    finally:
        if progress is not None:
            progress.close()
    for task in tasks:
        kept = done.get(task.id)
        if kept is not None:
            status = str(kept.get("status"))
            summary.statuses[status] = summary.statuses.get(status, 0) + 1
            summary.answered += status == TaskStatus.ANSWERED.value
    return summary


def parse_result(row: dict[str, Any]) -> AgentResult:
    """A result row back as an :class:`AgentResult` (``input`` and ``id`` set aside)."""
    fields = {k: v for k, v in row.items() if k not in ("id", "input")}
    return AgentResult.from_dict(fields)
