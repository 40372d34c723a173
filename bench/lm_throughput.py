"""Training throughput of ``codeloop lm train`` against a minimal hand-written PyTorch loop.

Both train the same model (``codeloop.lm.model.build_model``, same config) on batches of the same
size from the same token stream, in one process, trials interleaved (the order alternates) so
machine noise hits both sides alike. The floor is the least a training loop can do: sample a
batch, forward, cross-entropy, backward, AdamW step. ``codeloop lm train`` adds the learning-rate
schedule, gradient clipping, FIM batches, loss bookkeeping and the progress line; its figure is
the tokens/s it reports itself (training steps only, the first step excluded; held-out evals
and checkpoints are left out by an eval interval longer than the run, as in the floor).
With ``--compile`` both sides are also run under ``torch.compile`` (compilation excluded).

Run:  flock /tmp/codeloop-bench.lock .venv/bin/python bench/lm_throughput.py [--threads 1] [--steps 30] [--trials 3] [--compile]
Target: codeloop / floor >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from codeloop.lm.corpus import default_corpus_root, load_corpus
from codeloop.lm.data import document_stream
from codeloop.lm.model import ModelConfig, build_model
from codeloop.lm.tokenizer import train_tokenizer
from codeloop.lm.train import TrainConfig, train

CORPUS = [str(default_corpus_root() / d) for d in ("asyncio", "email", "json")]


def floor_tokens_per_second(
    cfg: ModelConfig, stream: torch.Tensor, batch: int, steps: int, compile_: bool
) -> float:
    """The minimal loop: random windows, forward, cross-entropy, backward, AdamW."""
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    fn = torch.compile(model) if compile_ else model
    g = torch.Generator().manual_seed(0)
    offsets = torch.arange(cfg.block_size + 1)
    elapsed, tokens = 0.0, 0
    for i in range(steps + 1):
        t = time.perf_counter()
        starts = torch.randint(0, stream.numel() - cfg.block_size - 1, (batch, 1), generator=g)
        rows = stream[starts + offsets]
        x, y = rows[:, :-1], rows[:, 1:]
        logits, _ = fn(x)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())
        if i > 0:  # the first step pays one-off costs, as in codeloop's own figure
            elapsed += time.perf_counter() - t
            tokens += x.numel()
    return tokens / elapsed


def codeloop_tokens_per_second(base: dict[str, Any], steps: int, compile_: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="lm-bench-") as d:
        cfg = TrainConfig(
            out=str(Path(d) / "run"), steps=steps + 1, eval_every=10**9, compile=compile_, **base
        )
        return train(cfg, progress=None).tokens_per_second


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also measure both sides under torch.compile")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--vocab-size", type=int, default=2048)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(
        corpus=tuple(CORPUS),
        heldout_fraction=0.1,
        vocab_size=args.vocab_size,
        block_size=args.context,
        d_model=args.d_model,
        n_layer=args.layers,
        n_head=4,
        batch_size=args.batch_size,
        threads=args.threads,
        eval_tokens=args.context,
    )
    corpus = load_corpus([Path(p) for p in CORPUS], heldout_fraction=0.1)
    tok = train_tokenizer(corpus.train, args.vocab_size)
    stream = document_stream(tok, corpus.train)
    cfg = ModelConfig(
        vocab_size=tok.vocab_size,
        block_size=args.context,
        d_model=args.d_model,
        n_layer=args.layers,
        n_head=4,
    )
    print("command:", " ".join([sys.executable, *sys.argv]))
    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "threads": args.threads,
        "load_avg_1m": os.getloadavg()[0],
        "model": cfg.to_dict(),
        "batch_size": args.batch_size,
        "steps_per_trial": args.steps,
    }
    print("environment:", json.dumps(env))
    results: dict[str, Any] = {}
    modes = [False, True] if args.compile else [False]
    for compile_ in modes:
        label = "compiled" if compile_ else "eager"
        floor, ours = [], []
        for trial in range(args.trials if not compile_ else max(1, args.trials - 1)):
            order = ("floor", "codeloop") if trial % 2 == 0 else ("codeloop", "floor")
            for side in order:
                if side == "floor":
                    floor.append(floor_tokens_per_second(cfg, stream, args.batch_size, args.steps, compile_))
                else:
                    ours.append(codeloop_tokens_per_second(base, args.steps, compile_))
            print(
                f"  {label} trial {trial + 1}: floor {floor[-1]:,.0f} tok/s, codeloop {ours[-1]:,.0f} tok/s",
                flush=True,
            )
        results[label] = {
            "floor_tokens_per_second": statistics.median(floor),
            "codeloop_tokens_per_second": statistics.median(ours),
            "ratio": statistics.median(ours) / statistics.median(floor),
        }
    if "compiled" in results:
        results["compile_speedup_codeloop"] = (
            results["compiled"]["codeloop_tokens_per_second"] / results["eager"]["codeloop_tokens_per_second"]
        )
    print("\n| mode | floor tok/s | codeloop lm train tok/s | ratio |")
    print("|---|---|---|---|")
    for label in ("eager", "compiled"):
        if label in results:
            r = results[label]
            print(
                f"| {label} | {r['floor_tokens_per_second']:,.0f} | {r['codeloop_tokens_per_second']:,.0f} | {r['ratio']:.2f}x |"
            )
    if "compile_speedup_codeloop" in results:
        print(f"torch.compile speed-up of codeloop lm train: {results['compile_speedup_codeloop']:.2f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
