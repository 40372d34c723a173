"""``codeloop eval BENCHMARK`` below the command line: options in, an EvalReport out.

Checks an existing samples file, or generates samples with a model first; either way the run
resumes if interrupted. Faces (CLI, server) call :func:`run_eval` and only format. What is
particular to a benchmark (its problems, prompts, generation) comes from ``evals/benchmarks``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from codeloop.evals.benchmarks import Benchmark, get_benchmark
from codeloop.evals.errors import EvalInputError
from codeloop.evals.evaluate import evaluate_samples
from codeloop.evals.generation import GenerationSettings, Mode, TextModel
from codeloop.evals.mapping import SampleMap
from codeloop.evals.problems import Problem
from codeloop.evals.progress import Progress
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.report import EvalReport
from codeloop.evals.results import default_results_path
from codeloop.evals.runner import load_first_attempts, run_model_eval
from codeloop.evals.samples import load_samples
from codeloop.evals.sessions import SessionFactory, sandbox_factory

__all__ = ["EvalOptions", "HumanEvalOptions", "default_out_path", "resolve_style", "run_eval", "run_humaneval"]


@dataclass(frozen=True)
class EvalOptions:
    """Everything a benchmark run can be told; defaults are the documented ones."""

    benchmark: str = "humaneval"  # humaneval, humaneval-infill, evalplus
    span: str = "single-line"  # humaneval-infill: single-line or multi-line
    data: Path | None = None  # evalplus: the HumanEval+ / MBPP+ JSONL file
    samples: Path | None = None  # check this file; None: generate with the model
    out: Path | None = None  # where generated samples go (results: <out>_results.jsonl)
    results: Path | None = None  # where results go when checking --samples
    model: str | None = None
    base_url: str | None = None
    n: int = 1
    ks: tuple[int, ...] = (1, 10)
    limit: int | None = None
    workers: int | None = None
    timeout: float = 5.0
    memory_mb: int | None = None
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    prompt_style: str = "auto"  # overrides generation.style once the model is known
    progress: bool = True
    first_attempts: Path | None = None  # repair/trace: round one from this plain run's samples
    fresh_sessions: bool = False  # a whole new sandbox session per sample instead of a forked child


def resolve_style(requested: str, model_name: str, benchmark: Benchmark | None = None) -> PromptStyle:
    """The prompt style of a run: ``auto`` is the benchmark's default for the model (HumanEval's by default)."""
    return (benchmark or get_benchmark("humaneval")).resolve_style(requested, model_name)


def default_out_path(model_name: str, mode: Mode, benchmark: str = "humaneval") -> Path:
    """``<benchmark>-<model>-<mode>.jsonl`` in the current directory."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", Path(model_name).name if model_name.startswith("gguf:") else model_name)
    return Path(f"{benchmark}-{slug.strip('-')}-{mode}.jsonl")


def _selected(problems: dict[str, Problem], limit: int | None) -> list[Problem]:
    chosen = list(problems.values())
    if limit is not None:
        if limit < 1:
            raise EvalInputError(f"--limit must be at least 1, got {limit}")
        chosen = chosen[:limit]
    return chosen


def _validate(options: EvalOptions) -> None:
    if options.n < 1:
        raise EvalInputError(f"--n must be at least 1, got {options.n}")
    if options.timeout <= 0:
        raise EvalInputError(f"--timeout must be positive, got {options.timeout}")
    if options.workers is not None and options.workers < 1:
        raise EvalInputError(f"--workers must be at least 1, got {options.workers}")
    if options.generation.rounds < 0:
        raise EvalInputError(f"--rounds must be 0 or more, got {options.generation.rounds}")


def run_eval(
    options: EvalOptions,
    *,
    model: TextModel | None = None,
    model_name: str | None = None,
    open_session: SessionFactory | None = None,
    benchmark: Benchmark | None = None,
    mapper: SampleMap | None = None,
) -> EvalReport:
    """Run a benchmark as ``options`` say. ``model`` is loaded with ``get_model`` when not given.

    ``mapper`` makes and checks the samples elsewhere (``codeloop.scale.RayEvalMap``: a Ray
    cluster's actors, each with its own model); no model is loaded here then, and ``model_name``
    is the mapper's.
    """
    _validate(options)
    bench = benchmark or get_benchmark(options.benchmark, span=options.span, data=options.data)
    problems = bench.load()
    chosen = _selected(problems, options.limit)
    sessions = open_session or sandbox_factory(timeout=options.timeout, memory_mb=options.memory_mb)
    if options.samples is not None:
        wanted = {p.task_id for p in chosen}
        samples = [s for s in load_samples(options.samples, problems) if s.task_id in wanted]
        if not samples:
            raise EvalInputError(f"{options.samples} has no samples for the selected problems")
        results = options.results or default_results_path(options.samples)
        if Path(results).resolve() == Path(options.samples).resolve():
            raise EvalInputError(f"--results {results} is the samples file itself: choose another path")
        return evaluate_samples(
            samples,
            problems,
            results,
            sessions,
            ks=options.ks,
            timeout=options.timeout,
            workers=options.workers,
            progress=Progress(len(samples), "check", enabled=options.progress),
            settings={"samples_file": str(options.samples), **bench.describe()},
            benchmark=bench.name,
            fresh_sessions=options.fresh_sessions,
            mapper=mapper,
        )
    if options.generation.mode not in bench.modes:
        modes = ", ".join(str(m) for m in bench.modes)
        raise EvalInputError(f"{bench.name} does not support --mode {options.generation.mode} (it supports {modes})")
    if options.prompt_style != "auto":
        bench.resolve_style(options.prompt_style, options.model or "")  # a wrong style fails before the model loads
    if mapper is not None:
        model_name = model_name or getattr(mapper, "model_name", None)
    elif model is None:
        from codeloop.llm import get_model

        loaded = get_model(options.model, base_url=options.base_url)
        model, model_name = loaded, loaded.name
    name = model_name or options.model or "model"
    settings = replace(options.generation, style=bench.resolve_style(options.prompt_style, name))
    if settings.mode is not Mode.PLAIN and settings.style is PromptStyle.COMPLETE:
        raise EvalInputError(f"--mode {settings.mode} needs a conversation: use --prompt-style chatml or chat")
    out = options.out or default_out_path(name, settings.mode, bench.name)
    first = None
    if options.first_attempts is not None:
        if settings.mode is Mode.PLAIN:
            raise EvalInputError("--first-attempts seeds the first round of --mode repair or trace, not plain")
        first = load_first_attempts(options.first_attempts, problems, model_name=name, n=options.n, settings=settings)
    return run_model_eval(
        chosen,
        problems,
        model,
        settings,
        out,
        sessions,
        benchmark=bench,
        n=options.n,
        ks=options.ks,
        model_name=name,
        timeout=options.timeout,
        workers=options.workers,
        show_progress=options.progress,
        first_attempts=first,
        fresh_sessions=options.fresh_sessions,
        mapper=mapper,
    )


# The names of the HumanEval-only harness, kept for callers of the Python API.
HumanEvalOptions = EvalOptions
run_humaneval = run_eval
