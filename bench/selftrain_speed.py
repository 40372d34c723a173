"""Speed of self-training's LoRA steps on the CPU: float32 over all logits vs the fast path, side by side.

The fast path is what ``codeloop selftrain`` does by default: bf16 autocast where the CPU computes
in bf16 natively (AMX or AVX512-BF16; the weights, the LoRA and AdamW stay float32) and the LM
head applied only at the positions that predict a reply token (``logits_to_keep``). Both runs
load nothing twice: one base model, the LoRA removed between runs, the same examples, seed,
steps and batch. Reports the median seconds per optimiser step (the first step is warm-up and
left out), the ratio, and whether the first step's losses agree (same LoRA initialisation, so
they differ only by the arithmetic).

Examples: self-training function tasks (plain HumanEval's prompt, the reference body as the
reply) and question tasks (the agent's real first prompt, rendered with the model's chat template,
with the worked example's reply as a reply of realistic length); or ``--train-jsonl`` with a
run's ``train.jsonl``.

Run:  .venv/bin/python bench/selftrain_speed.py [--steps 4] [--batch 2] [--examples 8] [--threads 0] [--attribute]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def examples(tokenizer: Any, count: int, train_jsonl: Path | None) -> list[Any]:
    from codeloop.agent.loop import Agent
    from codeloop.evals.prompts import Conversation, PromptStyle
    from codeloop.selftrain.functions import generate_function_tasks
    from codeloop.selftrain.lora import TrainExample
    from codeloop.selftrain.sample import FENCE
    from codeloop.selftrain.tasks import generate_tasks

    if train_jsonl is not None:
        rows = [json.loads(line) for line in train_jsonl.read_text().splitlines() if line.strip()]
        return [TrainExample(r["prompt"], r["completion"], r.get("source", "")) for r in rows[:count]]
    out = []
    for task in generate_function_tasks((count + 1) // 2, seed=11):
        prompt = Conversation.start(task.problem(), PromptStyle.CHATML).chatml_prompt()
        out.append(TrainExample(prompt, task.canonical_solution.rstrip("\n") + FENCE, "functions"))
    agent = Agent(model=None)  # type: ignore[arg-type]  # only its prompt is used
    for task in generate_tasks(count // 2, seed=11):
        messages = agent.initial_messages(task.task)
        reply = next(m["content"] for m in messages if m["role"] == "assistant")
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out.append(TrainExample(prompt, reply + "<|im_end|>", "questions"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen-coder-0.5b", help="a bundled model name or a GGUF path")
    ap.add_argument("--steps", type=int, default=4, help="optimiser steps per mode (the first is warm-up)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--train-jsonl", type=Path, default=None, help="a run's train.jsonl instead of built-in examples")
    ap.add_argument("--fast-precision", default="auto", choices=("auto", "bf16", "fp32"))
    ap.add_argument(
        "--attribute", action="store_true", help="also run fp32 with reply-only logits: how much each change gives"
    )
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from codeloop.selftrain.lora import (
        LoraConfig,
        _encode,
        cpu_bf16_flags,
        load_base,
        resolve_precision,
        train_lora,
    )

    if Path(args.model).is_file():
        path = Path(args.model)
    else:
        from codeloop.llm.assemble import prepare
        from codeloop.llm.catalog import find_bundled

        bundled = find_bundled(args.model)
        if bundled is None:
            ap.error(f"unknown bundled model {args.model!r}")
        path = prepare(bundled)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    base, tokenizer = load_base(path)
    load_s = time.perf_counter() - start
    data = examples(tokenizer, args.examples, args.train_jsonl)
    lengths = [_encode(tokenizer, ex, 1024) for ex in data]
    tokens = [len(ids) for ids, _ in lengths]
    replies = [sum(1 for x in labels if x != -100) for _, labels in lengths]
    fast_precision = resolve_precision(args.fast_precision)
    modes = [("fp32, all logits", "fp32", True), (f"{fast_precision}, reply logits", fast_precision, False)]
    if args.attribute and fast_precision != "fp32":
        modes.append(("fp32, reply logits", "fp32", False))
    results: dict[str, dict[str, Any]] = {}
    for label, precision, full in modes:
        config = LoraConfig(steps=args.steps, batch=args.batch, warmup=1, seed=0, precision=precision, lr=2e-4)
        peft_model, log = train_lora(base, tokenizer, data, config, full_logits=full)
        per_step = [log[0]["seconds"]] + [b["seconds"] - a["seconds"] for a, b in itertools.pairwise(log)]
        results[label] = {
            "seconds_per_step": statistics.median(per_step[1:] or per_step),
            "first_step_seconds": per_step[0],
            "first_loss": log[0]["loss"],
            "losses": [round(e["loss"], 5) for e in log],
        }
        base = peft_model.unload()  # the base model without the LoRA, for the next run
    slow, fast = (results[m[0]] for m in modes[:2])
    ratio = slow["seconds_per_step"] / fast["seconds_per_step"]
    rel = abs(fast["first_loss"] - slow["first_loss"]) / abs(slow["first_loss"])
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {len(os.sched_getaffinity(0))} CPUs, "
        f"torch threads {torch.get_num_threads()}, bf16 CPU flags {cpu_bf16_flags() or 'none'}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"model {path.name} (loaded in {load_s:.0f} s); {len(data)} examples, {statistics.mean(tokens):.0f} tokens "
        f"each on average ({statistics.mean(replies):.0f} of them reply); {args.steps} steps x batch {args.batch}"
    )
    for label, r in results.items():
        print(
            f"{label:>22}: {r['seconds_per_step']:.2f} s/step (median of steps 2..{args.steps}; "
            f"first {r['first_step_seconds']:.2f} s), first-step loss {r['first_loss']:.5f}, losses {r['losses']}"
        )
    print(f"ratio fp32 / fast: {ratio:.2f}x faster; first-step losses differ by {rel * 100:.2f}% (aim < 2%)")
    if len(modes) > 2:
        mid = results[modes[2][0]]
        print(
            f"attribution: reply-only logits alone {slow['seconds_per_step'] / mid['seconds_per_step']:.2f}x, "
            f"then bf16 {mid['seconds_per_step'] / fast['seconds_per_step']:.2f}x; "
            f"fp32 first-step losses differ by {abs(mid['first_loss'] - slow['first_loss']) / slow['first_loss'] * 100:.4f}%"
        )
    print(json.dumps({"results": results, "ratio": ratio, "first_loss_rel_diff": rel}))
    return 0 if rel < 0.02 else 1


if __name__ == "__main__":
    sys.exit(main())
