"""Where a run's samples are made and checked: in this process (:class:`LocalMap`) or elsewhere.

The runner hands a *map strategy* the work (generation jobs, samples to check) and reads the
answers back; it keeps the files, the resume logic and the report. ``codeloop.scale.RayEvalMap``
is the same strategy over a pool of Ray actors, each holding its own model and sandbox.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from codeloop.evals.benchmarks.base import Benchmark
from codeloop.evals.checker import CheckResult
from codeloop.evals.generation import GenerationSettings, TextModel, generate_sample
from codeloop.evals.parallel import check_all
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import SessionFactory

__all__ = ["GenerationJob", "LocalMap", "SampleMap", "generate_one", "sample_seed"]


@dataclass(frozen=True)
class GenerationJob:
    """One sample to make: the problem, its place in the run (which fixes the seed), a first attempt."""

    problem: Problem
    task_index: int
    sample_index: int
    first: str | None = None
    benchmark: Benchmark | None = None  # who makes the sample (HumanEval's generation when None)


def sample_seed(base: int | None, task_index: int, sample_index: int) -> int | None:
    """A distinct, reproducible seed per sample, so n > 1 samples differ and a resume repeats them."""
    if base is None:
        return None
    return (base + 1_000_003 * task_index + sample_index) % (2**31)


def generate_one(
    job: GenerationJob, model: TextModel, settings: GenerationSettings, open_session: SessionFactory | None
) -> tuple[dict[str, Any], float]:
    """The samples-file record of one job, and the seconds it took: the same on any worker."""
    seed = sample_seed(settings.seed, job.task_index, job.sample_index)
    if job.benchmark is not None:
        made = job.benchmark.generate(job.problem, model, settings, open_session, seed=seed, first=job.first)
    else:
        made = generate_sample(job.problem, model, settings, open_session, seed=seed, first=job.first)
    return {"task_id": job.problem.task_id, "completion": made.completion, **made.record_fields()}, made.seconds


class SampleMap(Protocol):
    """A map strategy: generation answers come back in job order; checks in any order."""

    def generate(self, jobs: Sequence[GenerationJob], settings: GenerationSettings) -> Generator[tuple[dict[str, Any], float], None, None]: ...

    def check(
        self,
        samples: Sequence[Sample],
        problems: Mapping[str, Problem],
        *,
        timeout: float,
        workers: int | None,
        fresh_sessions: bool,
    ) -> Generator[CheckResult, None, None]: ...


class LocalMap:
    """This process: one model, jobs one after another; checks on one thread per core."""

    def __init__(self, model: TextModel | None, open_session: SessionFactory | None) -> None:
        self.model = model
        self.open_session = open_session

    def generate(self, jobs: Sequence[GenerationJob], settings: GenerationSettings) -> Generator[tuple[dict[str, Any], float], None, None]:
        if self.model is None:
            raise ValueError("generating samples needs a model")
        for job in jobs:
            yield generate_one(job, self.model, settings, self.open_session)

    def check(
        self,
        samples: Sequence[Sample],
        problems: Mapping[str, Problem],
        *,
        timeout: float,
        workers: int | None,
        fresh_sessions: bool,
    ) -> Generator[CheckResult, None, None]:
        if self.open_session is None:
            raise ValueError("checking samples needs a sandbox session factory")
        return check_all(samples, problems, self.open_session, timeout=timeout, workers=workers, fresh_sessions=fresh_sessions)
