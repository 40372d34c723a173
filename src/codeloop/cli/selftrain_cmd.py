"""``codeloop selftrain``: fine-tune the embedded model on programs its own runs verified."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.config import user_dir
from codeloop.errors import ConfigError

DESCRIPTION = (
    "Execution-verified fine-tuning (rejection sampling / STaR): generate tasks with computed answers, "
    "sample programs with the embedded model, run them in the sandbox, keep the verified ones, train a "
    "LoRA on them, export it as a llama.cpp adapter and register it (use it as --model BASE+NAME). "
    "Stages resume in the run directory. Needs the selftrain extra: pip install 'codeloop[selftrain]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="selftrain", help="adapter name to register (default: selftrain)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: $CODELOOP_HOME/selftrain/NAME)")
    parser.add_argument("--tasks", type=int, default=120, help="generated tasks (default: 120)")
    parser.add_argument("--samples", type=int, default=4, help="programs sampled per task (default: 4)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default: 0.8)")
    parser.add_argument("--keep", type=int, default=1, help="verified programs kept per task (default: 1)")
    parser.add_argument("--steps", type=int, default=60, help="LoRA optimiser steps (default: 60)")
    parser.add_argument("--batch", type=int, default=4, help="examples per step (default: 4)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default: 8)")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default: 2e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for tasks, sampling and training")
    parser.add_argument(
        "--stop-after", default=None, help="stop after this stage: tasks, sample, select, train, export"
    )


def run(args: argparse.Namespace) -> int:
    from codeloop.selftrain.lora import LoraConfig
    from codeloop.selftrain.pipeline import SelftrainConfig, run_pipeline

    if args.base_url:
        raise ConfigError("selftrain fine-tunes an embedded model: drop --base-url")
    try:
        lora = LoraConfig(rank=args.rank, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    config = SelftrainConfig(
        model=args.model or "qwen-coder-0.5b",
        name=args.name,
        tasks=args.tasks,
        samples_per_task=args.samples,
        temperature=args.temperature,
        keep_per_task=args.keep,
        seed=args.seed,
        lora=lora,
    )
    out = args.out or user_dir() / "selftrain" / args.name

    def say(text: str) -> None:
        print(f"selftrain: {text}", file=sys.stderr, flush=True)

    report = run_pipeline(out, config, say=say, progress=sys.stderr, stop_after=args.stop_after)
    report["run_dir"] = str(out)
    if args.json:
        print(json.dumps(report))
    else:
        stages = report.get("stages", {})
        for stage, figures in stages.items():
            print(f"{stage}: {json.dumps(figures)}")
    return 0
