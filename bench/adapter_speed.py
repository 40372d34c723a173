"""Cost of a LoRA adapter: decode time per token of ``BASE+ADAPTER`` against ``BASE``, side by side.

Both models are loaded in one process with the same llama.cpp settings; trials alternate
(base, adapter, adapter, base, ...) so machine noise hits both alike. Reports the median time
per generated token of each and the ratio adapter/base (the self-training issue's aim: <= 1.1x).

Run:  .venv/bin/python bench/adapter_speed.py --adapter selftrain [--base qwen-coder-0.5b] [--trials 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from codeloop.llm import get_model

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a Python program that prints the first 30 prime numbers, with comments."},
]


def per_token(model: object, tokens: int) -> float:
    start = time.perf_counter()
    reply = model.complete(PROMPT, max_tokens=tokens, temperature=0.0)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start - (reply.timings.time_to_first_token or 0.0)
    generated = max(1, (reply.usage.completion_tokens or 1) - 1)
    return elapsed / generated


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="qwen-coder-0.5b")
    ap.add_argument("--adapter", required=True, help="a registered adapter name or a path to an adapter GGUF")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=96)
    args = ap.parse_args()
    base = get_model(args.base, n_ctx=1024)
    tuned = get_model(f"{args.base}+{args.adapter}", n_ctx=1024)
    per_token(base, 8), per_token(tuned, 8)  # warm both
    times: dict[str, list[float]] = {"base": [], "adapter": []}
    for trial in range(args.trials):
        order = [("base", base), ("adapter", tuned)]
        for name, model in order if trial % 2 == 0 else order[::-1]:
            times[name].append(per_token(model, args.tokens))
    b, a = statistics.median(times["base"]), statistics.median(times["adapter"])
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"python {platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"base     {args.base}: {b * 1000:.1f} ms/token (median of {args.trials})")
    print(f"adapter  {args.base}+{args.adapter}: {a * 1000:.1f} ms/token")
    print(f"ratio adapter/base: {a / b:.3f}x (aim <= 1.1x)")
    print(json.dumps({"base_ms_per_token": b * 1000, "adapter_ms_per_token": a * 1000, "ratio": a / b}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
