"""Held-out likelihood: how probable each model finds correct solutions it never trained on.

Greedy pass@1 of the 0.5B model is a coarse, noisy yardstick for a small adapter: one different
token changes a whole program, and about a fifth of HumanEval's verdicts flip under any adapter
trained so far, both ways. This measures the same question continuously: for every problem of a
set, the prompt is exactly what ``codeloop eval humaneval --mode plain`` shows the model (and what
``codeloop selftrain`` trains function tasks on), and the text scored is a *reference* solution's
body followed by the closing fence. Each model's summed negative log-likelihood (nats) of those
tokens is computed by llama.cpp (teacher forcing, one pass per problem), the models loaded one at
a time in one process with the same settings; the first model is the reference of the paired
comparison (per problem: is the reference solution more likely under the other model?).

Sets:

- ``humaneval``: HumanEval's 164 canonical solutions. A reported benchmark: read it, never choose
  training settings on it.
- ``functions``: ``codeloop selftrain``'s function families, drawn with ``--seed`` (default 1000;
  runs so far drew with seeds 0 and 1); tasks whose prompt appears in any run directory under
  ``$CODELOOP_HOME/selftrain`` are dropped. In-distribution but unseen: the set to choose
  settings on.

Reported per model: NLL per token over the whole set, mean per-problem NLL per token, and against
the first model: problems whose reference became more / less likely, the exact sign test, and a
bootstrap 95% interval of the mean per-problem difference (nats per token; negative: the model
finds the reference solutions more likely than the first model does). Lower is not "better code"
by itself (a model can move towards another correct style); it says whether training moved the
model towards or away from correct held-out solutions, with far less noise than pass@1.

Run:  .venv/bin/python bench/heldout_likelihood.py --set humaneval \\
          --models qwen-coder-0.5b,qwen-coder-0.5b+st3:lora [--limit N] [--out per_problem.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from codeloop.evals.paired import sign_test

FENCE = "\n```"


def problems(name: str, seed: int, count: int) -> list[tuple[str, Any]]:
    """``(id, Problem)`` pairs of the set; the Problem's ``canonical_solution`` is the reference body."""
    if name == "humaneval":
        from codeloop.evals.problems import load_humaneval

        return list(load_humaneval().items())
    from codeloop.config import user_dir
    from codeloop.selftrain.functions import generate_function_tasks, read_function_tasks

    seen: set[str] = set()
    root = user_dir() / "selftrain"
    for tasks_file in root.glob("*/functions/tasks.jsonl") if root.is_dir() else []:
        seen.update(t.prompt for t in read_function_tasks(tasks_file))
    drawn = generate_function_tasks(count, seed=seed)
    kept = [(t.id, t.problem()) for t in drawn if t.prompt not in seen]
    if len(kept) < len(drawn):
        print(
            f"functions: {len(drawn) - len(kept)} of {len(drawn)} drawn tasks appear in a run directory; dropped"
        )
    return kept


def prompt_text(problem: Any) -> str:
    from codeloop.evals.prompts import Conversation, PromptStyle

    return Conversation.start(problem, PromptStyle.CHATML).chatml_prompt()


def score(llama: Any, prompt: str, reply: str) -> tuple[float, int, int]:
    """Summed NLL (nats) of ``reply``'s tokens after ``prompt``, their count, and how many are top-1."""
    import numpy as np

    head = llama.tokenize(prompt.encode(), add_bos=False, special=True)
    tail = llama.tokenize(reply.encode(), add_bos=False, special=False)
    llama.reset()
    llama.eval(head + tail)
    rows = np.asarray(llama.scores[len(head) - 1 : len(head) + len(tail) - 1], dtype=np.float64)
    rows -= rows.max(axis=1, keepdims=True)
    logp = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    target = np.asarray(tail)
    picked = logp[np.arange(len(tail)), target]
    top1 = int((logp.argmax(axis=1) == target).sum())
    return float(-picked.sum()), len(tail), top1


def bootstrap(diffs: list[float], rounds: int = 4000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=("humaneval", "functions"), default="functions")
    ap.add_argument("--models", required=True, help="comma-separated model names; the first is the reference")
    ap.add_argument("--seed", type=int, default=1000, help="functions: the draw's seed (default 1000)")
    ap.add_argument("--count", type=int, default=240, help="functions: tasks to draw (default 240)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N problems (0: all)")
    ap.add_argument("--out", type=Path, help="write per-problem figures (JSONL) here")
    args = ap.parse_args()
    from codeloop.llm import get_model
    from codeloop.llm.llama_load import load_llama
    from codeloop.llm.settings import EmbeddedSettings

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if not names:
        ap.error("--models needs at least one model")
    if len(set(names)) < len(names):
        ap.error(f"--models names a model twice: {args.models}")
    from codeloop.errors import CodeloopError
    from codeloop.llm import check_model

    for name in names:  # every name before any scoring: a bad second name must not cost the first's run
        try:
            if not check_model(name).embedded:
                ap.error(f"{name} is not an embedded model (a GGUF run by llama.cpp): its logits are not at hand")
        except CodeloopError as e:
            ap.error(str(e))
    items = problems(args.set, args.seed, args.count)
    if args.limit:
        items = items[: args.limit]
    texts = [(pid, prompt_text(p), p.canonical_solution.rstrip("\n") + FENCE) for pid, p in items]
    settings = EmbeddedSettings.resolve(n_ctx=2048)
    per: dict[str, dict[str, tuple[float, int, int]]] = {}
    for name in names:
        model = get_model(name, n_ctx=2048)
        path, adapter = model.path, getattr(model, "adapter", None)  # type: ignore[attr-defined]
        start = time.perf_counter()
        llama = load_llama(path, settings, lora_path=adapter, logits_all=True)
        try:
            per[name] = {}
            for i, (pid, prompt, reply) in enumerate(texts, 1):
                per[name][pid] = score(llama, prompt, reply)
                if i % 20 == 0 or i == len(texts):
                    print(
                        f"  {name}: {i}/{len(texts)} ({time.perf_counter() - start:.0f} s)", file=sys.stderr
                    )
        finally:
            llama.close()
        print(
            f"{name}: {path.name}"
            + (f" + {adapter}" if adapter else "")
            + f", {time.perf_counter() - start:.0f} s"
        )
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(
        f"python {platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs; set {args.set}, {len(texts)} problems"
    )
    ref = names[0]
    summary: dict[str, Any] = {}
    for name in names:
        rows = per[name]
        nll = sum(v[0] for v in rows.values())
        tokens = sum(v[1] for v in rows.values())
        mean = statistics.fmean(v[0] / v[1] for v in rows.values())
        entry: dict[str, Any] = {
            "nll_per_token": round(nll / tokens, 5),
            "mean_problem_nll_per_token": round(mean, 5),
            "top1": round(sum(v[2] for v in rows.values()) / tokens, 4),
            "tokens": tokens,
        }
        line = (
            f"{name:40s} NLL/token {nll / tokens:.4f}  mean per problem {mean:.4f}  top1 {entry['top1']:.3f}"
        )
        if name != ref:
            diffs = [rows[k][0] / rows[k][1] - per[ref][k][0] / per[ref][k][1] for k in rows]
            better = sum(1 for d in diffs if d < 0)
            worse = sum(1 for d in diffs if d > 0)
            lo, hi = bootstrap(diffs)
            entry.update(
                {
                    "vs_first": round(statistics.fmean(diffs), 5),
                    "ci95": [round(lo, 5), round(hi, 5)],
                    "more_likely": better,
                    "less_likely": worse,
                    "p_value": sign_test(better, worse),
                }
            )
            line += (
                f"\n{'':40s} vs {ref}: {entry['vs_first']:+.4f} nats/token (95% CI {lo:+.4f}..{hi:+.4f}); "
                f"reference more likely on {better}, less on {worse} (sign test p = {entry['p_value']:.2g})"
            )
        summary[name] = entry
        print(line)
    print(json.dumps({"set": args.set, "problems": len(texts), "models": summary}))
    if args.out:
        with args.out.open("w", encoding="utf-8") as fh:
            for pid, _, _ in texts:
                row = {"id": pid}
                row.update(
                    {
                        n: {"nll": per[n][pid][0], "tokens": per[n][pid][1], "top1": per[n][pid][2]}
                        for n in names
                    }
                )
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
