"""What one Ray actor holds and does: a model loaded once, sandbox sessions, and the work calls.

A plain class (no Ray import): :class:`~codeloop.scale.pool.WorkerPool` wraps it with
``ray.remote`` on the driver, and Ray builds it in a worker process on some node. Its state is
built once per actor (and again if Ray restarts a killed actor); every call after that reuses
it. The calls are the same functions a local run calls, so their answers are the same.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from codeloop.evals.checker import CheckResult
from codeloop.evals.generation import GenerationSettings
from codeloop.evals.mapping import GenerationJob, generate_one
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import SessionFactory, sandbox_factory
from codeloop.evals.zygote import ForkChecker

__all__ = ["Worker", "WorkerSpec"]


@dataclass(frozen=True)
class WorkerSpec:
    """How each actor sets itself up."""

    model: str | None = None  # None: the configured default (on the actor's node)
    load_model: bool = True  # False: checks only, no model loaded
    base_url: str | None = None  # an OpenAI-compatible server (vLLM...) instead of the embedded model
    n_threads: int | None = None  # llama.cpp threads of the embedded model (None: the model's default)
    timeout: float = 5.0  # seconds per sandbox cell (checks, visible examples)
    memory_mb: int | None = None  # memory cap per sandbox session


def _is_remote(name: str | None, base_url: str | None) -> bool:
    """Whether ``get_model`` will make a server client (which takes no ``n_threads``)."""
    if base_url is not None:
        return True
    from codeloop.config import load_config
    from codeloop.llm import default_model_name, resolve_name

    config = load_config()
    resolved = resolve_name(name if name is not None else default_model_name(config), config)
    return resolved.startswith(("openai:", "ollama:"))


class Worker:
    """One actor's state: the model (if any), a sandbox factory, a forked-child checker."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.started = time.perf_counter()
        self.model: Any = None
        if spec.load_model:
            from codeloop.llm import get_model

            options: dict[str, Any] = {}
            if spec.n_threads is not None and not _is_remote(spec.model, spec.base_url):
                options["n_threads"] = spec.n_threads
            self.model = get_model(spec.model, base_url=spec.base_url, **options)
        self.open_session: SessionFactory = sandbox_factory(timeout=spec.timeout, memory_mb=spec.memory_mb)
        self._checkers: dict[float, ForkChecker] = {}
        self.load_seconds = time.perf_counter() - self.started
        self.calls = 0

    def info(self) -> dict[str, Any]:
        """Who this actor is: process, node, model, threads, and how long setting up took."""
        return {
            "pid": os.getpid(),
            "node": socket.gethostname(),
            "model": None if self.model is None else str(getattr(self.model, "name", "")),
            "n_threads": self.spec.n_threads,
            "load_seconds": round(self.load_seconds, 3),
            "calls": self.calls,
        }

    def ready(self) -> bool:
        return True

    # -- the work ------------------------------------------------------------------------------

    def generate(self, settings: GenerationSettings, job: GenerationJob) -> tuple[dict[str, Any], float]:
        """One sample's record (see ``codeloop.evals.mapping.generate_one``)."""
        if self.model is None:
            raise ValueError("this worker was started without a model")
        self.calls += 1
        return generate_one(job, self.model, settings, self.open_session)

    def check(self, timeout: float, fresh_sessions: bool, item: tuple[Sample, Problem]) -> CheckResult:
        """The verdict on one sample, in a child forked from this actor's jailed template session."""
        sample, problem = item
        self.calls += 1
        if fresh_sessions:
            from codeloop.evals.checker import check_sample

            return check_sample(sample, problem, self.open_session, timeout=timeout)
        checker = self._checkers.get(timeout)
        if checker is None:
            checker = self._checkers[timeout] = ForkChecker(self.open_session, timeout=timeout)
        return checker.check(sample, problem)

    def run_task(self, limits: Any, strategy: Any, task: str) -> dict[str, Any]:
        """One agent task in a fresh sandbox session (as ``codeloop run``), its result as a dict."""
        from codeloop.agent import Agent

        if self.model is None:
            raise ValueError("this worker was started without a model")
        self.calls += 1
        with Agent(self.model, limits=limits, strategy=strategy) as agent:
            result = agent.run(task)
        return result.to_dict()

    def close(self) -> None:
        for checker in self._checkers.values():
            checker.__exit__(None, None, None)
        self._checkers.clear()
