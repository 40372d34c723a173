"""Check a set of samples, resumably and in parallel, and report pass@k.

This is the whole of ``codeloop eval humaneval --samples FILE`` below the command line, and the
second half of a model-driven run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from codeloop.evals.jsonl import JsonlAppender
from codeloop.evals.mapping import LocalMap, SampleMap
from codeloop.evals.problems import Problem
from codeloop.evals.progress import Progress
from codeloop.evals.report import EvalReport, build_report
from codeloop.evals.results import SavedResult, load_saved_results, result_row, write_final_results
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import SessionFactory

__all__ = ["evaluate_samples"]


def evaluate_samples(
    samples: Sequence[Sample],
    problems: Mapping[str, Problem],
    results_path: str | os.PathLike[str],
    open_session: SessionFactory,
    *,
    ks: Sequence[int] = (1,),
    timeout: float = 5.0,
    workers: int | None = None,
    progress: Progress | None = None,
    settings: Mapping[str, Any] | None = None,
    benchmark: str = "humaneval",
    fresh_sessions: bool = False,
    mapper: SampleMap | None = None,
) -> EvalReport:
    """Check every sample not already checked in ``results_path``, then write and report all results.

    Each finished check is appended to the results file at once; if the run is interrupted, the
    same call later checks only what is left. ``mapper`` checks elsewhere (default: on this
    machine, one thread per core).
    """
    started = time.perf_counter()
    path = Path(results_path)
    saved = load_saved_results(path, samples)
    todo = [s for s in samples if s.key not in saved]
    if progress is not None:
        progress.total = len(samples)
        progress.done = len(samples) - len(todo)
    by_key = {s.key: s for s in todo}
    check_started = time.perf_counter()
    strategy = mapper if mapper is not None else LocalMap(None, open_session)
    verdicts = strategy.check(todo, problems, timeout=timeout, workers=workers, fresh_sessions=fresh_sessions)
    with JsonlAppender(path) as out, closing(verdicts):
        try:
            for verdict in verdicts:
                sample = by_key[(verdict.task_id, verdict.completion_id)]
                out.append(result_row(sample, verdict.passed, verdict.result))
                saved[sample.key] = SavedResult(sample.task_id, sample.completion_id, verdict.passed, verdict.result)
                if progress is not None:
                    passed = sum(r.passed for r in saved.values())
                    progress.advance(note=f"passed {passed}")
        finally:
            if progress is not None:
                progress.close()
    check_seconds = time.perf_counter() - check_started
    write_final_results(path, samples, saved)
    timings = {"check_seconds": check_seconds, "total_seconds": time.perf_counter() - started}
    return build_report(
        benchmark,
        [saved[s.key] for s in samples],
        ks,
        str(path),
        settings={**(settings or {}), "resumed": len(samples) - len(todo)},
        timings=timings,
    )
