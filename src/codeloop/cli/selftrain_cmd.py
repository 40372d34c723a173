"""``codeloop selftrain``: fine-tune the embedded model on programs its own runs verified."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.config import user_dir
from codeloop.errors import ConfigError
from codeloop.selftrain.constants import DEFAULT_MERGE_TYPE, MERGE_TYPES

DESCRIPTION = (
    "Execution-verified fine-tuning (rejection sampling / STaR): make tasks, sample programs with the "
    "embedded model, run them in the sandbox, keep the verified ones, train a LoRA on them, export it as a "
    "llama.cpp adapter and register it (use it as --model BASE+NAME); --merge also merges it into the base "
    "model, which then runs at the base's speed. Task sources (--sources): "
    "'questions' (17 programmatic families, answers computed in Python; the agent's prompt), 'functions' "
    "(HumanEval-style functions written here, hidden tests computed by reference implementations; plain "
    "HumanEval's prompt), 'generated' (questions the model proposes, kept when M of N of its programs print "
    "the same answer). Stages resume in the run directory. Needs the selftrain extra: "
    "pip install 'codeloop[selftrain]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="selftrain", help="adapter name to register (default: selftrain)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: $CODELOOP_HOME/selftrain/NAME)")
    parser.add_argument(
        "--sources", default="questions,functions",
        help="comma-separated task sources: questions, functions, generated (default: questions,functions)",
    )
    parser.add_argument("--tasks", type=int, default=120, help="question tasks (default: 120)")
    parser.add_argument("--functions", type=int, default=120, help="function tasks (default: 120)")
    parser.add_argument(
        "--proposals", type=int, default=40,
        help="generated tasks to ask the model for (at most 3x as many calls; default: 40)",
    )
    parser.add_argument(
        "--vote", default="3/4",
        help="M/N: sample N programs per generated task, keep it when M print the same answer (default: 3/4)",
    )
    parser.add_argument(
        "--teacher", default=None, metavar="MODEL",
        help="let another model write the programs (e.g. qwen-coder-1.5b); the sandbox still verifies each "
        "one and the --model is trained on them (default: the model teaches itself)",
    )
    parser.add_argument("--samples", type=int, default=4, help="programs sampled per task (default: 4)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default: 0.8)")
    parser.add_argument("--keep", type=int, default=1, help="verified programs kept per task (default: 1)")
    parser.add_argument("--steps", type=int, default=60, help="LoRA optimiser steps (default: 60)")
    parser.add_argument("--batch", type=int, default=4, help="examples per step (default: 4)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default: 8)")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default: 2e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for tasks, sampling and training")
    parser.add_argument(
        "--keep-best", action="store_true",
        help="end with the adapter of the lowest held-out validation loss, not the last step's",
    )
    parser.add_argument(
        "--hard", action="store_true",
        help="train only on tasks the trained model does not solve with one greedy attempt "
        "(a probe stage makes that attempt per task)",
    )
    parser.add_argument(
        "--validation", type=int, default=24, metavar="N",
        help="held-out function tasks (reference solutions, never trained on) whose loss is measured "
        "before, during and after training (default: 24; 0: none)",
    )
    parser.add_argument(
        "--fp32", action="store_true",
        help="train in float32 throughout (default: bf16 autocast where the CPU has AMX or AVX512-BF16)",
    )
    parser.add_argument(
        "--stop-after", default=None, help="stop after this stage: tasks, sample, probe (with --hard), select, train, export, register"
    )
    parser.add_argument(
        "--merge", nargs="?", const=DEFAULT_MERGE_TYPE, default=None, choices=MERGE_TYPES,
        help="after registering, merge the adapter into the base model (merged tensors in TYPE, default "
        f"{DEFAULT_MERGE_TYPE}): "
        "BASE+NAME then runs at the base's speed (see codeloop adapters)",
    )


def run(args: argparse.Namespace) -> int:
    from codeloop.selftrain.lora import LoraConfig
    from codeloop.selftrain.pipeline import SelftrainConfig, run_pipeline

    if args.base_url:
        raise ConfigError("selftrain fine-tunes an embedded model: drop --base-url")
    try:
        lora = LoraConfig(
            rank=args.rank, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
            precision="fp32" if args.fp32 else "auto", keep_best=args.keep_best,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e
    agree, _, of = str(args.vote).partition("/")
    if not (agree.isdigit() and of.isdigit()):
        raise ConfigError(f"--vote takes M/N, e.g. 3/4; got {args.vote!r}")
    if args.keep_best and args.validation == 0:
        raise ConfigError("--keep-best picks the adapter by its validation loss: it needs --validation above 0")
    config = SelftrainConfig(
        model=args.model or "qwen-coder-0.5b",
        name=args.name,
        tasks=args.tasks,
        samples_per_task=args.samples,
        temperature=args.temperature,
        keep_per_task=args.keep,
        seed=args.seed,
        lora=lora,
        sources=tuple(s.strip() for s in str(args.sources).split(",") if s.strip()),
        function_tasks=args.functions,
        proposals=args.proposals,
        vote_agree=int(agree),
        vote_samples=int(of),
        teacher=args.teacher,
        validation=args.validation,
        hard=args.hard,
    )
    out = args.out or user_dir() / "selftrain" / args.name

    def say(text: str) -> None:
        print(f"selftrain: {text}", file=sys.stderr, flush=True)

    report = run_pipeline(out, config, say=say, progress=sys.stderr, stop_after=args.stop_after, merge=args.merge)
    report["run_dir"] = str(out)
    if args.json:
        print(json.dumps(report))
    else:
        stages = report.get("stages", {})
        for stage, figures in stages.items():
            print(f"{stage}: {json.dumps(figures)}")
    return 0
