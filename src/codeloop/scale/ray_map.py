"""The evaluation's map strategy over a Ray cluster: generation and checking on a pool of actors.

``codeloop eval ... --ray ADDRESS`` builds one :class:`RayEvalMap` and hands it to the runner,
which keeps the files, the resume logic and the report exactly as in a local run: the actors
only make and check samples, and their answers come back in order.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from codeloop.agent.settings import Limits, Strategy
from codeloop.evals.checker import CheckResult
from codeloop.evals.generation import GenerationSettings
from codeloop.evals.mapping import GenerationJob
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.scale.cluster import connect
from codeloop.scale.pool import WorkerPool, plan_actors
from codeloop.scale.worker import WorkerSpec

__all__ = ["RayEvalMap", "RayOptions", "RayTaskMap", "open_pool"]


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: the cluster, the actors, the CPUs and model threads of each."""

    address: str
    actors: int | None = None  # None: as many as the cluster's CPUs hold
    cpus: float = 1.0  # CPUs Ray reserves per actor (fractions allowed: 0.5 packs two per core)
    threads: int | None = None  # llama.cpp threads per actor's model (None: the CPUs, at least 1)
    start_timeout: float = 600.0  # seconds for the actors to load their models

    def n_threads(self) -> int:
        return self.threads if self.threads is not None else max(1, int(self.cpus))


def open_pool(
    options: RayOptions,
    *,
    model: str | None,
    base_url: str | None,
    timeout: float,
    memory_mb: int | None,
    load_model: bool = True,
) -> WorkerPool:
    """Join the cluster and start the actors (each loads the model once, unless ``load_model`` is False)."""
    ray = connect(options.address)
    cluster_cpus = float(ray.cluster_resources().get("CPU", 0.0))
    size = plan_actors(cluster_cpus, options.cpus, options.actors)
    spec = WorkerSpec(
        model=model,
        load_model=load_model,
        base_url=base_url,
        n_threads=options.n_threads(),
        timeout=timeout,
        memory_mb=memory_mb,
    )
    return WorkerPool(ray, spec, size=size, cpus=options.cpus, start_timeout=options.start_timeout)


class RayEvalMap:
    """A :class:`~codeloop.evals.mapping.SampleMap` whose work runs on a pool of Ray actors."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        names = {info.get("model") for info in pool.infos}
        self.model_name: str | None = names.pop() if len(names) == 1 else None

    @classmethod
    def open(
        cls,
        options: RayOptions,
        *,
        model: str | None,
        base_url: str | None = None,
        timeout: float = 5.0,
        memory_mb: int | None = None,
        load_model: bool = True,
    ) -> RayEvalMap:
        """Join the cluster and start the actors; ``load_model=False`` for a run that only checks."""
        pool = open_pool(options, model=model, base_url=base_url, timeout=timeout, memory_mb=memory_mb, load_model=load_model)
        return cls(pool)

    def generate(
        self, jobs: Sequence[GenerationJob], settings: GenerationSettings
    ) -> Generator[tuple[dict[str, Any], float], None, None]:
        yield from self.pool.map("generate", jobs, settings)

    def check(
        self,
        samples: Sequence[Sample],
        problems: Mapping[str, Problem],
        *,
        timeout: float,
        workers: int | None,
        fresh_sessions: bool,
    ) -> Generator[CheckResult, None, None]:
        # ``workers`` is the local thread count; on the cluster the actors are the workers.
        yield from self.pool.map("check", [(s, problems[s.task_id]) for s in samples], timeout, fresh_sessions)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> RayEvalMap:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class RayTaskMap:
    """A :class:`~codeloop.scale.batch.TaskMap` over a pool of Ray actors: agent tasks, in order."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        names = {str(info.get("model")) for info in pool.infos}
        self.model_name = names.pop() if len(names) == 1 else ",".join(sorted(names))

    @classmethod
    def open(cls, options: RayOptions, *, model: str | None, base_url: str | None = None, cell_timeout: float = 30.0) -> RayTaskMap:
        return cls(open_pool(options, model=model, base_url=base_url, timeout=cell_timeout, memory_mb=None))

    def run(self, tasks: Sequence[str], limits: Limits, strategy: Strategy) -> Generator[dict[str, Any], None, None]:
        yield from self.pool.map("run_task", tasks, limits, strategy)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> RayTaskMap:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
