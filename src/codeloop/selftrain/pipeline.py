"""``codeloop selftrain``: tasks -> samples -> verified examples -> LoRA -> GGUF adapter -> registry.

Every stage writes its output and a report entry into the run directory and is skipped when
its output is already there, so an interrupted run resumes where it stopped (sampling resumes
task by task). ``report.json`` holds each stage's figures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from codeloop.errors import ConfigError
from codeloop.selftrain.constants import MERGE_TYPES
from codeloop.selftrain.functions import (
    FunctionTask,
    generate_function_tasks,
    read_function_tasks,
    write_function_tasks,
)
from codeloop.selftrain.lora import LoraConfig, TrainExample
from codeloop.selftrain.sample import Sample, sample_task, select_examples
from codeloop.selftrain.tasks import Task, generate_tasks, read_tasks, write_tasks

if TYPE_CHECKING:
    from codeloop.llm import ModelCheck

__all__ = ["DEFAULT_SOURCES", "SOURCES", "STAGES", "SelftrainConfig", "check_models", "run_pipeline"]

#: probe: only with ``hard``; merge: only when asked
STAGES = ("tasks", "sample", "probe", "select", "train", "export", "register", "merge")
#: questions: programmatic families with computed answers, solved by the agent's first reply;
#: functions: HumanEval-style functions with hidden tests, in plain HumanEval's format;
#: generated: questions the model proposes, kept when m of n of its programs agree
SOURCES = ("questions", "functions", "generated")
DEFAULT_SOURCES = ("questions", "functions")


@dataclass(frozen=True)
class SelftrainConfig:
    """What one self-training run does; saved in the run directory so a resume uses the same."""

    model: str = "qwen-coder-0.5b"
    name: str = "selftrain"
    tasks: int = 120  # question tasks
    samples_per_task: int = 4
    temperature: float = 0.8
    keep_per_task: int = 1
    seed: int = 0
    cell_timeout: float = 10.0
    families: tuple[str, ...] | None = None  # question families to draw from (default: all)
    lora: LoraConfig = field(default_factory=LoraConfig)
    sources: tuple[str, ...] = DEFAULT_SOURCES
    function_tasks: int = 120
    function_families: tuple[str, ...] | None = None  # default: all
    proposals: int = 40  # generated tasks wanted (at most 3x as many model calls)
    vote_agree: int = 3  # a generated task is kept when vote_agree of vote_samples programs agree
    vote_samples: int = 4
    #: the model that writes the programs (default: ``model`` itself); ``model`` is the one trained.
    #: Only the programs the sandbox verifies are kept, whoever wrote them.
    teacher: str | None = None
    #: held-out function tasks (reference bodies written here, never trained on) whose loss the
    #: train stage measures before, during and after training; 0: none
    validation: int = 24
    #: train only on tasks the trained model does not solve with one greedy attempt (the ``probe``
    #: stage finds them); the STaR idea that the learning signal is where the model still fails
    hard: bool = False

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.samples_per_task < 1 or self.keep_per_task < 1:
            raise ConfigError("tasks, samples per task and kept per task must be at least 1")
        if self.function_tasks < 1 or self.proposals < 1:
            raise ConfigError("function tasks and proposals must be at least 1")
        if self.validation < 0:
            raise ConfigError(f"validation tasks must be 0 or more, got {self.validation}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be in [0, 2], got {self.temperature}")
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources or len(set(self.sources)) != len(self.sources):
            raise ConfigError(
                f"sources must be distinct names from {', '.join(SOURCES)}, got {', '.join(self.sources) or 'none'}"
            )
        if not 1 <= self.vote_agree <= self.vote_samples:
            raise ConfigError(f"the vote needs 1 <= m <= n, got {self.vote_agree} of {self.vote_samples}")
        if 2 * self.vote_agree <= self.vote_samples:
            raise ConfigError(f"{self.vote_agree} of {self.vote_samples} is no majority: the vote needs m > n/2")
        if self.teacher is not None and (not self.teacher.strip() or self.teacher == self.model):
            raise ConfigError("the teacher must be another model than the one trained (leave it out to self-train)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelftrainConfig:
        data = dict(data)
        lora = LoraConfig(**data.pop("lora", {}))
        families, function_families = data.pop("families", None), data.pop("function_families", None)
        # a run directory from before the task sources drew questions only
        sources = tuple(data.pop("sources", ("questions",)))
        return cls(
            **data,
            families=tuple(families) if families else None,
            function_families=tuple(function_families) if function_families else None,
            sources=sources,
            lora=lora,
        )


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

    def done(self, stage: str, source: str | None = None) -> bool:
        entry = self.report.get("stages", {}).get(stage)
        if entry is None:
            return False
        return source is None or source in entry.get("by_source", {})

    def source_dir(self, source: str) -> Path:
        path = self.dir / source
        path.mkdir(exist_ok=True)
        return path

    def record(self, stage: str, figures: dict[str, Any], source: str | None = None) -> None:
        """A stage's figures; with ``source``, that source's part, and the stage's totals over its sources."""
        stages = self.report.setdefault("stages", {})
        if source is None:
            stages[stage] = figures
        else:
            entry = stages.setdefault(stage, {"by_source": {}})
            entry["by_source"][source] = figures
            totals: dict[str, Any] = {}
            for part in entry["by_source"].values():
                for key, value in part.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        totals[key] = round(totals.get(key, 0) + value, 3)
            stages[stage] = {**totals, "by_source": entry["by_source"]}
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


def _count(items: list[Any], key: Callable[[Any], str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[key(item)] = counts.get(key(item), 0) + 1
    return counts


AnyTask = Task | FunctionTask


def _stage_tasks_offline(run: _Run, source: str) -> list[AnyTask]:
    """Tasks of the sources that need no model: ``questions`` and ``functions``."""
    path = run.source_dir(source) / "tasks.jsonl"
    if source == "questions":
        if run.done("tasks", source) and path.is_file():
            return list(read_tasks(path))
        chosen = list(run.config.families) if run.config.families else None
        questions = generate_tasks(run.config.tasks, seed=run.config.seed, families=chosen)
        write_tasks(questions, path)
        run.record("tasks", {"tasks": len(questions), "families": _count(questions, lambda t: t.family)}, source)
        run.say(f"tasks: {len(questions)} questions from {len(_count(questions, lambda t: t.family))} families")
        return list(questions)
    if run.done("tasks", source) and path.is_file():
        return list(read_function_tasks(path))
    fchosen = list(run.config.function_families) if run.config.function_families else None
    functions = generate_function_tasks(run.config.function_tasks, seed=run.config.seed, families=fchosen)
    write_function_tasks(functions, path)
    run.record("tasks", {"tasks": len(functions), "families": _count(functions, lambda t: t.family)}, source)
    run.say(f"tasks: {len(functions)} functions from {len(_count(functions, lambda t: t.family))} families")
    return list(functions)


def _stage_tasks_generated(run: _Run, model: Any) -> list[AnyTask]:
    """The model proposes questions; bounded (3x calls), deduplicated, never a benchmark task."""
    from codeloop.selftrain.generated import bench_task_texts, propose_tasks

    directory = run.source_dir("generated")
    path = directory / "tasks.jsonl"
    if run.done("tasks", "generated") and path.is_file():
        return list(read_tasks(path))
    start = time.perf_counter()
    texts, proposals = propose_tasks(model, run.config.proposals, seed=run.config.seed, exclude=bench_task_texts())
    _atomic_lines(directory / "proposals.jsonl", [p.to_dict() for p in proposals])
    tasks = [Task(f"gen-{i + 1}", "generated", text, None, "vote") for i, text in enumerate(texts)]
    write_tasks(tasks, path)
    run.record(
        "tasks",
        {
            "tasks": len(tasks),
            "proposed": len(proposals),
            "dropped": _count([p for p in proposals if p.task is None], lambda p: p.verdict),
            "seconds": round(time.perf_counter() - start, 1),
        },
        "generated",
    )
    run.say(f"tasks: {len(tasks)} generated tasks from {len(proposals)} proposals")
    return list(tasks)


def _complete(path: Path, tasks: list[AnyTask], k: int) -> tuple[list[Sample], list[AnyTask]]:
    """The samples in ``path`` of tasks that have all ``k``, and the tasks still to sample."""
    samples = _read_samples(path)
    have = {s.task_id for s in samples}
    complete = {t for t in have if sum(1 for s in samples if s.task_id == t) >= k}
    return [s for s in samples if s.task_id in complete], [t for t in tasks if t.id not in complete]


def _sample_tasks(
    run: _Run, source: str, tasks: list[AnyTask], model: Any, *, path: Path, k: int, temperature: float, label: str
) -> list[Sample]:
    """``k`` programs per task by ``model`` at ``temperature``, each run and verified in a fresh
    sandbox interpreter, appended to ``path`` task by task (an interrupted run resumes)."""
    from contextlib import contextmanager

    from codeloop.agent.loop import Agent
    from codeloop.evals.progress import Progress
    from codeloop.sandbox import Sandbox
    from codeloop.selftrain.generated import final_answer, is_hard_coded, vote
    from codeloop.selftrain.sample import sample_function_task

    samples, todo = _complete(path, tasks, k)
    bar = Progress(len(tasks), label, stream=run.progress, enabled=run.progress is not None)
    bar.advance(len(tasks) - len(todo))
    with Sandbox(timeout=run.config.cell_timeout, network=False) as sandbox, path.open("a", encoding="utf-8") as out:
        agent = Agent(model, sandbox=sandbox)

        def run_code(code: str) -> tuple[str, str]:
            sandbox.restart()  # each program starts from a fresh interpreter
            result = sandbox.run(code)
            return str(result.status), result.stdout

        @contextmanager
        def fresh_session() -> Iterator[Any]:
            sandbox.restart()  # the checker's "fresh session": the same sandbox, a new interpreter
            yield sandbox

        for task in todo:
            seed = run.config.seed + tasks.index(task)
            if isinstance(task, FunctionTask):
                got = sample_function_task(
                    model, task, k=k, temperature=temperature, seed=seed,
                    open_session=fresh_session, timeout=run.config.cell_timeout,
                )
            elif source == "generated":
                got = sample_task(
                    agent, task, k=k, temperature=temperature, seed=seed, run_code=run_code,
                    judge=lambda _stdout: False,
                )
                answers = [
                    None
                    if s.status != "ok" or (a := final_answer(s.stdout)) is None or is_hard_coded(s.code or "", a, task.task)
                    else a
                    for s in got
                ]
                _, agreeing = vote(answers, run.config.vote_agree)
                for i in agreeing:
                    got[i].verified = True
            else:
                got = sample_task(
                    agent, task, k=k, temperature=temperature, seed=seed, run_code=run_code
                )
            for s in got:
                out.write(json.dumps(s.to_dict()) + "\n")
            out.flush()
            samples.extend(got)
            verified = sum(s.verified for s in samples)
            bar.advance(1, note=f"{verified}/{len(samples)} verified")
    bar.close()
    return samples


def _stage_sample(run: _Run, source: str, tasks: list[AnyTask], model: Any) -> list[Sample]:
    path = run.source_dir(source) / "samples.jsonl"
    k = run.config.vote_samples if source == "generated" else run.config.samples_per_task
    done, todo = _complete(path, tasks, k)
    if run.done("sample", source) and not todo:
        return done
    start = time.perf_counter()
    samples = _sample_tasks(
        run, source, tasks, model, path=path, k=k, temperature=run.config.temperature, label=f"sampling {source}"
    )
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
        "writer": str(getattr(model, "name", model)),  # the model that wrote the programs
    }
    if source == "generated":
        figures["agreed"] = verified_tasks  # tasks where vote_agree of vote_samples programs agreed
    run.record("sample", figures, source)
    what = "tasks agreed on" if source == "generated" else "tasks solved at least once"
    run.say(
        f"sample {source}: {figures['verified']}/{figures['samples']} samples verified, "
        f"{verified_tasks}/{len(tasks)} {what}"
    )
    return samples


def _stage_probe(run: _Run, source: str, tasks: list[AnyTask], model: Any) -> set[str]:
    """``--hard``: one greedy attempt per task by the trained model, verified like the samples; the
    ids of the tasks it solves that way (their samples teach it little). Generated tasks are not
    probed (no ground truth to check one attempt against): all stay."""
    if source == "generated":
        return set()
    path = run.source_dir(source) / "probe.jsonl"
    done, todo = _complete(path, tasks, 1)
    if run.done("probe", source) and not todo:
        return {s.task_id for s in done if s.verified}
    start = time.perf_counter()
    got = _sample_tasks(run, source, tasks, model, path=path, k=1, temperature=0.0, label=f"probing {source}")
    solved = {s.task_id for s in got if s.verified}
    run.record(
        "probe",
        {
            "tasks": len(tasks),
            "solved_greedily": len(solved),
            "seconds": round(time.perf_counter() - start, 1),
            "model": str(getattr(model, "name", model)),
        },
        source,
    )
    run.say(f"probe {source}: {model.name} solves {len(solved)}/{len(tasks)} tasks with one greedy attempt")
    return solved


def _stage_select(
    run: _Run, source: str, tasks: list[AnyTask], samples: list[Sample], model: Any, solved: AbstractSet[str] = frozenset()
) -> list[TrainExample]:
    from codeloop.agent.loop import Agent
    from codeloop.selftrain.sample import function_prompt

    path = run.source_dir(source) / "train.jsonl"
    if run.done("select", source) and path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [TrainExample(r["prompt"], r["completion"], source) for r in rows]
    kept = select_examples([s for s in samples if s.task_id not in solved], per_task=run.config.keep_per_task)
    by_id = {t.id: t for t in tasks}
    agent = Agent(model)
    render = getattr(getattr(model, "runtime", None), "render_chat", None)
    if render is None:
        raise ConfigError(f"self-training needs an embedded model (a GGUF run by llama.cpp), not {model.name}")
    rows = []
    for s in kept:
        task = by_id[s.task_id]
        if isinstance(task, FunctionTask):
            prompt = function_prompt(model, task)  # plain HumanEval's prompt, the assistant turn prefilled
        else:
            prompt = render(agent.initial_messages(task.task))
        rows.append({"task_id": s.task_id, "source": source, "prompt": prompt, "completion": s.reply})
    _atomic_lines(path, rows)
    run.record(
        "select",
        {
            "kept": len(rows),
            "families": sorted({by_id[s.task_id].family for s in kept}),
            **({"dropped_solved_greedily": len(solved & {s.task_id for s in samples if s.verified})} if run.config.hard else {}),
        },
        source,
    )
    hard = f" (tasks it solves greedily left out: {len(solved)})" if run.config.hard else ""
    run.say(f"select {source}: {len(rows)} training examples{hard}")
    return [TrainExample(r["prompt"], r["completion"], source) for r in rows]


#: offset of the validation draw's seed from the run's, so held-out tasks differ from the training draw
VALIDATION_SEED_OFFSET = 1_000_003


def _validation_examples(run: _Run, model: Any) -> list[TrainExample]:
    """Held-out function tasks as examples: plain HumanEval's prompt, the reference body and fence.

    Drawn with their own seed from the run's function families; a task whose prompt is one of the
    run's training tasks is dropped (and counted). Written to ``validation.jsonl`` for inspection.
    Empty when ``validation`` is 0 or the model does not take plain HumanEval's ChatML prompt.
    """
    from codeloop.selftrain.sample import FENCE, function_prompt

    count = run.config.validation
    if count == 0:
        return []
    fchosen = list(run.config.function_families) if run.config.function_families else None
    drawn = generate_function_tasks(count, seed=run.config.seed + VALIDATION_SEED_OFFSET, families=fchosen)
    trained = run.dir / "functions" / "tasks.jsonl"
    seen = {t.prompt for t in read_function_tasks(trained)} if trained.is_file() else set()
    held = [t for t in drawn if t.prompt not in seen]
    try:
        rows = [
            {"task_id": t.id, "family": t.family, "prompt": function_prompt(model, t),
             "completion": t.canonical_solution.rstrip("\n") + FENCE}
            for t in held
        ]
    except ValueError as e:  # another prompt style: no comparable held-out text
        run.say(f"train: no validation ({e})")
        return []
    _atomic_lines(run.dir / "validation.jsonl", rows)
    if len(held) < len(drawn):
        run.say(f"train: {len(drawn) - len(held)} validation tasks were training tasks too; left out")
    return [TrainExample(r["prompt"], r["completion"], "validation") for r in rows]


def _stage_train(run: _Run, examples: list[TrainExample], gguf_path: Path, model: Any) -> Path:
    from codeloop.selftrain.gguf_adapter import write_lora_gguf
    from codeloop.selftrain.lora import adapter_state, load_base, model_shape, train_lora, write_log

    adapter = run.dir / "adapter.gguf"
    if run.done("train") and run.done("export") and adapter.is_file():
        return adapter
    start = time.perf_counter()
    from codeloop.selftrain.lora import resolve_precision

    precision = resolve_precision(run.config.lora.precision)
    run.say(f"train: loading {gguf_path.name} into transformers (dequantised, float32; {precision} compute)")
    base, tokenizer = load_base(gguf_path)
    load_seconds = time.perf_counter() - start

    validation = _validation_examples(run, model)
    held_out = ""

    def on_step(entry: dict[str, Any]) -> None:
        nonlocal held_out
        if "validation_loss" in entry:
            held_out = f", held-out {entry['validation_loss']:.4f}"
        if run.progress is not None:
            run.progress.write(
                f"\rtrain: step {entry['step']}/{run.config.lora.steps} loss {entry['loss']:.4f}{held_out} "
                f"({entry['seconds']:.0f} s)"
            )
            run.progress.flush()

    peft_model, log = train_lora(
        base, tokenizer, examples, run.config.lora, on_step=on_step, validation=validation
    )
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
            "seconds_per_step": round(log[-1]["seconds"] / len(log), 2),
            "precision": precision,
            "examples_by_source": _count(list(examples), lambda e: e.source),
            "loss_curve": [round(e["loss"], 5) for e in log],
            "loss_curve_by_source": {
                source: [round(e["loss_by_source"][source], 5) if source in e.get("loss_by_source", {}) else None for e in log]
                for source in sorted({ex.source for ex in examples})
            },
            **({"validation": _validation_figures(log, validation)} if validation else {}),
        },
    )
    if validation:
        figures = run.report["stages"]["train"]["validation"]
        kept = (
            f"; kept the weights of step {figures['kept_step']}, its lowest"
            if figures.get("kept_step") not in (None, log[-1]["step"])
            else ""
        )
        run.say(
            f"train: held-out function tasks' loss {figures['before']:.4f} -> {figures['after']:.4f} "
            f"({figures['examples']} tasks never trained on){kept}"
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


def _validation_figures(log: list[dict[str, Any]], validation: list[TrainExample]) -> dict[str, Any]:
    curve = [[0, round(log[0]["validation_before"], 5)]]
    curve += [[e["step"], round(e["validation_loss"], 5)] for e in log if "validation_loss" in e]
    return {
        "examples": len(validation),
        "before": curve[0][1],
        "after": curve[-1][1],
        "best_step": min(curve, key=lambda point: point[1])[0],
        **({"kept_step": log[-1]["kept_step"]} if "kept_step" in log[-1] else {}),
        "curve": curve,
        "seconds": log[-1].get("validation_seconds", 0.0),
    }


def check_models(config: SelftrainConfig) -> tuple[ModelCheck, ModelCheck | None]:
    """The trained model and the teacher, checked by name without loading either (cheap).

    Raises the error ``get_model`` would for a name that leads nowhere, and :class:`ConfigError`
    when the trained model is not an embedded base model or the teacher is that model itself
    (an alias of it, say).
    """
    from codeloop.llm import check_model

    student = check_model(config.model)
    if not student.embedded:
        raise ConfigError(f"self-training needs an embedded model (a GGUF run by llama.cpp), not {config.model}")
    if student.adapter:
        raise ConfigError(
            f"self-training trains a new adapter on a base model, not on {student.name} (itself a base with an "
            "adapter): name its base, or a merged model as gguf:PATH"
        )
    teacher = check_model(config.teacher) if config.teacher else None
    if teacher is not None and teacher.name == student.name:
        raise ConfigError(f"the teacher {config.teacher!r} is {student.name} itself (leave --teacher out to self-train)")
    return student, teacher


def run_pipeline(
    directory: Path,
    config: SelftrainConfig,
    *,
    say: Say = lambda _: None,
    progress: TextIO | None = None,
    stop_after: str | None = None,
    merge: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) every stage in ``directory``; returns the report.

    ``merge``: after registering, merge the adapter into the base model with merged tensors of this
    type (:data:`codeloop.selftrain.constants.MERGE_TYPES`), so ``BASE+NAME`` runs at the base's speed.
    """
    from codeloop.llm import get_model
    from codeloop.llm.adapters import register_adapter

    if stop_after is not None and stop_after not in STAGES:
        raise ConfigError(f"unknown stage {stop_after!r}: one of {', '.join(STAGES)}")
    if merge is not None and merge not in MERGE_TYPES:  # before any stage, not after training
        raise ConfigError(f"unknown merge type {merge!r}: one of {', '.join(MERGE_TYPES)}")
    check_models(config)  # before any stage writes: a bad name fails now, not after the tasks stage
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
    tasks = {source: _stage_tasks_offline(run, source) for source in config.sources if source != "generated"}
    if stop_after == "tasks" and "generated" not in config.sources:
        return run.report
    model = get_model(config.model)
    gguf_path = getattr(model, "path", None)
    if not isinstance(gguf_path, Path):  # check_models made sure of it
        raise ConfigError(f"self-training needs an embedded model (a GGUF run by llama.cpp), not {config.model}")
    # the writer of the programs: the model itself, or a teacher whose verified programs it learns from
    writer = get_model(config.teacher) if config.teacher else model
    if config.teacher:
        say(f"teacher: {writer.name} writes the programs, {model.name} is trained on the verified ones")
    if "generated" in config.sources:
        tasks["generated"] = _stage_tasks_generated(run, writer)
    tasks = {source: tasks[source] for source in config.sources}
    if stop_after == "tasks":
        return run.report
    samples = {source: _stage_sample(run, source, tasks[source], writer) for source in config.sources}
    if stop_after == "sample":
        return run.report
    solved: dict[str, set[str]] = {source: set() for source in config.sources}
    if config.hard:
        solved = {source: _stage_probe(run, source, tasks[source], model) for source in config.sources}
        if stop_after == "probe":
            return run.report
    examples: list[TrainExample] = []
    for source in config.sources:
        examples += _stage_select(run, source, tasks[source], samples[source], model, solved[source])
    if stop_after == "select":
        return run.report
    adapter = _stage_train(run, examples, gguf_path, model)
    if stop_after in ("train", "export"):
        return run.report
    registered = register_adapter(
        config.name, adapter, model.name, {"report": run.report.get("stages", {}), "run": str(directory)}
    )
    run.record("register", {"name": registered.name, "model": f"{model.name}+{registered.name}"})
    say(f"register: use it with --model {model.name}+{registered.name}")
    if merge is not None and stop_after != "register":
        from codeloop.selftrain.merge import merge_adapter

        record = merge_adapter(registered.name, merge, say=say)
        keep = ("type", "merged_tensors", "scale", "bytes", "seconds", "types_equal_base")
        run.record("merge", {key: record[key] for key in keep})
    return run.report
