"""``codeloop selftrain``: tasks -> samples -> verified examples -> LoRA -> GGUF adapter -> registry.

Every stage writes its output and a report entry into the run directory and is skipped when
its output is already there, so an interrupted run resumes where it stopped (sampling resumes
task by task). ``report.json`` holds each stage's figures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from codeloop.errors import ConfigError
from codeloop.selftrain.lora import LoraConfig, TrainExample
from codeloop.selftrain.sample import Sample, sample_task, select_examples
from codeloop.selftrain.tasks import Task, generate_tasks, read_tasks, write_tasks

__all__ = ["STAGES", "SelftrainConfig", "run_pipeline"]

STAGES = ("tasks", "sample", "select", "train", "export", "register")


@dataclass(frozen=True)
class SelftrainConfig:
    """What one self-training run does; saved in the run directory so a resume uses the same."""

    model: str = "qwen-coder-0.5b"
    name: str = "selftrain"
    tasks: int = 120
    samples_per_task: int = 4
    temperature: float = 0.8
    keep_per_task: int = 1
    seed: int = 0
    cell_timeout: float = 10.0
    families: tuple[str, ...] | None = None  # task families to draw from (default: all)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.samples_per_task < 1 or self.keep_per_task < 1:
            raise ConfigError("tasks, samples per task and kept per task must be at least 1")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be in [0, 2], got {self.temperature}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelftrainConfig:
        lora = LoraConfig(**data.pop("lora", {}))
        families = data.pop("families", None)
        return cls(**data, families=tuple(families) if families else None, lora=lora)


Say = Callable[[str], None]


class _Run:
    def __init__(self, directory: Path, config: SelftrainConfig, say: Say, progress: TextIO | None) -> None:
        self.dir = directory
        self.config = config
        self.say = say
        self.progress = progress
        self.report_path = directory / "report.json"
        self.report: dict[str, Any] = (
            json.loads(self.report_path.read_text(encoding="utf-8")) if self.report_path.is_file() else {}
        )

    def done(self, stage: str) -> bool:
        return stage in self.report.get("stages", {})

    def record(self, stage: str, figures: dict[str, Any]) -> None:
        self.report.setdefault("stages", {})[stage] = figures
        self.report["config"] = self.config.to_dict()
        tmp = self.report_path.with_suffix(".part")
        tmp.write_text(json.dumps(self.report, indent=1), encoding="utf-8")
        tmp.replace(self.report_path)


def _atomic_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _read_samples(path: Path) -> list[Sample]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(Sample(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by an interrupted run: that task is sampled again
    return out


def _stage_tasks(run: _Run) -> list[Task]:
    path = run.dir / "tasks.jsonl"
    if run.done("tasks") and path.is_file():
        return read_tasks(path)
    chosen = list(run.config.families) if run.config.families else None
    tasks = generate_tasks(run.config.tasks, seed=run.config.seed, families=chosen)
    write_tasks(tasks, path)
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.family] = counts.get(t.family, 0) + 1
    run.record("tasks", {"tasks": len(tasks), "families": counts})
    run.say(f"tasks: {len(tasks)} from {len(counts)} families")
    return tasks


def _stage_sample(run: _Run, tasks: list[Task], model: Any) -> list[Sample]:
    from codeloop.agent.loop import Agent
    from codeloop.evals.progress import Progress
    from codeloop.sandbox import Sandbox

    path = run.dir / "samples.jsonl"
    samples = _read_samples(path)
    have = {s.task_id for s in samples}
    complete = {t for t in have if sum(1 for s in samples if s.task_id == t) >= run.config.samples_per_task}
    samples = [s for s in samples if s.task_id in complete]
    todo = [t for t in tasks if t.id not in complete]
    if run.done("sample") and not todo:
        return samples
    bar = Progress(len(tasks), "sampling", stream=run.progress, enabled=run.progress is not None)
    bar.advance(len(tasks) - len(todo))
    start = time.perf_counter()
    with Sandbox(timeout=run.config.cell_timeout) as sandbox, path.open("a", encoding="utf-8") as out:
        agent = Agent(model, sandbox=sandbox)

        def run_code(code: str) -> tuple[str, str]:
            sandbox.restart()  # each program starts from a fresh interpreter
            result = sandbox.run(code)
            return str(result.status), result.stdout

        for task in todo:
            got = sample_task(
                agent, task, k=run.config.samples_per_task, temperature=run.config.temperature,
                seed=run.config.seed + tasks.index(task), run_code=run_code,
            )
            for s in got:
                out.write(json.dumps(s.to_dict()) + "\n")
            out.flush()
            samples.extend(got)
            verified = sum(s.verified for s in samples)
            bar.advance(1, note=f"{verified}/{len(samples)} verified")
    bar.close()
    verified_tasks = len({s.task_id for s in samples if s.verified})
    figures = {
        "tasks": len(tasks),
        "samples": len(samples),
        "verified": sum(s.verified for s in samples),
        "tasks_with_a_verified_sample": verified_tasks,
        "no_code": sum(s.status == "no-code" for s in samples),
        "errors": sum(s.status not in ("ok", "no-code") for s in samples),
        "seconds": round(time.perf_counter() - start, 1),
        "completion_tokens": sum(s.tokens for s in samples),
    }
    run.record("sample", figures)
    run.say(
        f"sample: {figures['verified']}/{figures['samples']} samples verified, "
        f"{verified_tasks}/{len(tasks)} tasks solved at least once"
    )
    return samples


def _stage_select(run: _Run, tasks: list[Task], samples: list[Sample], model: Any) -> list[TrainExample]:
    from codeloop.agent.loop import Agent

    path = run.dir / "train.jsonl"
    if run.done("select") and path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [TrainExample(r["prompt"], r["completion"]) for r in rows]
    kept = select_examples(samples, per_task=run.config.keep_per_task)
    by_id = {t.id: t for t in tasks}
    agent = Agent(model)
    render = getattr(getattr(model, "runtime", None), "render_chat", None)
    if render is None:
        raise ConfigError(f"self-training needs an embedded model (a GGUF run by llama.cpp), not {model.name}")
    rows = []
    for s in kept:
        prompt = render(agent.initial_messages(by_id[s.task_id].task))
        rows.append({"task_id": s.task_id, "prompt": prompt, "completion": s.reply})
    _atomic_lines(path, rows)
    run.record("select", {"kept": len(rows), "families": sorted({by_id[s.task_id].family for s in kept})})
    run.say(f"select: {len(rows)} training examples")
    return [TrainExample(r["prompt"], r["completion"]) for r in rows]


def _stage_train(run: _Run, examples: list[TrainExample], gguf_path: Path) -> Path:
    from codeloop.selftrain.gguf_adapter import write_lora_gguf
    from codeloop.selftrain.lora import adapter_state, load_base, model_shape, train_lora, write_log

    adapter = run.dir / "adapter.gguf"
    if run.done("train") and run.done("export") and adapter.is_file():
        return adapter
    start = time.perf_counter()
    run.say(f"train: loading {gguf_path.name} into transformers (dequantised, float32)")
    base, tokenizer = load_base(gguf_path)
    load_seconds = time.perf_counter() - start

    def on_step(entry: dict[str, Any]) -> None:
        if run.progress is not None:
            run.progress.write(
                f"\rtrain: step {entry['step']}/{run.config.lora.steps} loss {entry['loss']:.4f} "
                f"({entry['seconds']:.0f} s)"
            )
            run.progress.flush()

    peft_model, log = train_lora(base, tokenizer, examples, run.config.lora, on_step=on_step)
    if run.progress is not None:
        run.progress.write("\n")
    write_log(log, run.dir / "train_log.json", run.config.lora)
    run.record(
        "train",
        {
            "examples": len(examples),
            "steps": len(log),
            "first_loss": log[0]["loss"],
            "last_loss": log[-1]["loss"],
            "load_seconds": round(load_seconds, 1),
            "train_seconds": log[-1]["seconds"],
        },
    )
    shape = model_shape(base)
    tensors = write_lora_gguf(
        adapter_state(peft_model),
        adapter,
        architecture="llama" if shape["model_type"] == "llama" else shape["model_type"],
        alpha=run.config.lora.alpha,
        n_head=shape["n_head"],
        n_head_kv=shape["n_head_kv"],
        name=f"codeloop-{run.config.name}",
    )
    run.record("export", {"tensors": tensors, "bytes": adapter.stat().st_size, "rank": run.config.lora.rank})
    run.say(f"export: {tensors} LoRA tensors -> {adapter}")
    return adapter


def run_pipeline(
    directory: Path,
    config: SelftrainConfig,
    *,
    say: Say = lambda _: None,
    progress: TextIO | None = None,
    stop_after: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) every stage in ``directory``; returns the report."""
    from codeloop.llm import get_model
    from codeloop.llm.adapters import register_adapter

    if stop_after is not None and stop_after not in STAGES:
        raise ConfigError(f"unknown stage {stop_after!r}: one of {', '.join(STAGES)}")
    directory.mkdir(parents=True, exist_ok=True)
    saved = directory / "config.json"
    if saved.is_file():
        previous = SelftrainConfig.from_dict(json.loads(saved.read_text(encoding="utf-8")))
        if previous != config:
            raise ConfigError(
                f"{directory} holds a run with other settings: resume it with the same options, or use another --out"
            )
    else:
        saved.write_text(json.dumps(config.to_dict(), indent=1), encoding="utf-8")
    run = _Run(directory, config, say, progress)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tasks = _stage_tasks(run)
    if stop_after == "tasks":
        return run.report
    model = get_model(config.model)
    gguf_path = getattr(model, "path", None)
    if not isinstance(gguf_path, Path):
        raise ConfigError(f"self-training needs an embedded model (a GGUF run by llama.cpp), not {config.model}")
    samples = _stage_sample(run, tasks, model)
    if stop_after == "sample":
        return run.report
    examples = _stage_select(run, tasks, samples, model)
    if stop_after == "select":
        return run.report
    adapter = _stage_train(run, examples, gguf_path)
    if stop_after in ("train", "export"):
        return run.report
    registered = register_adapter(
        config.name, adapter, model.name, {"report": run.report.get("stages", {}), "run": str(directory)}
    )
    run.record("register", {"name": registered.name, "model": f"{model.name}+{registered.name}"})
    say(f"register: use it with --model {model.name}+{registered.name}")
    return run.report
