"""Cost and fidelity of a LoRA adapter: the base, the runtime adapter and merged models, side by side.

All models are loaded in one process with the same llama.cpp settings:

- ``base``: ``BASE``;
- ``adapter``: ``BASE+ADAPTER:lora`` (llama.cpp applies the LoRA at run time);
- ``merged-TYPE``: the adapter merged into the base (``codeloop.selftrain.merge``), one per
  ``--merge`` type, written into a temporary directory this script creates and removes (the
  registry is not touched).

Speed: trials alternate (the order rotates each trial and reverses every other one) so machine
noise hits all alike; reports the median time per generated token of each and its ratio to the
base (the self-training issue's aim: <= 1.1x).

Fidelity, against the runtime adapter: for a few prompts the adapter's greedy reply is fed back
token by token to every model (teacher forcing): ``top1`` is the share of positions whose top
token is the adapter's, ``KL`` the mean KL divergence (nats) of the model's next-token
distribution from the adapter's there; ``greedy`` is the share of positions at which each
model's own greedy reply has the adapter's token (one different token changes the rest, so it
is the noisiest). The base's figures are the reference: a merge should be much closer to the
adapter (top1 near 1, KL near 0) than the base is.

Run:  .venv/bin/python bench/adapter_speed.py --adapter st2 [--merge base,q8_0,f16] [--trials 6]
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

from codeloop.llm import get_model
from codeloop.llm.adapters import find_adapter

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Write a Python program that prints the first 30 prime numbers, with comments.",
    },
]
FIDELITY_PROMPTS = [
    "<|im_start|>user\nWrite a Python function that returns the n-th Fibonacci number.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|im_start|>user\nHow many vowels are in the word 'programming'? Write Python code to count them."
    "<|im_end|>\n<|im_start|>assistant\n",
    'def rotate_left(xs: list[int], k: int) -> list[int]:\n    """Rotate xs left by k places."""\n',
    "<|im_start|>user\nWhat is the sum of the digits of 2**100? Answer with a short Python program."
    "<|im_end|>\n<|im_start|>assistant\n",
]


def per_token(model: Any, tokens: int) -> float:
    start = time.perf_counter()
    reply = model.complete(PROMPT, max_tokens=tokens, temperature=0.0)
    elapsed = time.perf_counter() - start - (reply.timings.time_to_first_token or 0.0)
    generated = max(1, (reply.usage.completion_tokens or 1) - 1)
    return elapsed / generated


def _logprobs(llama: Any) -> Any:
    import llama_cpp
    import numpy as np

    ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    logits = np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),)).astype(np.float64)
    logits -= logits.max()
    return logits - np.log(np.exp(logits).sum())


def _start(llama: Any, prompt: str) -> None:
    llama.reset()
    llama.eval(llama.tokenize(prompt.encode(), add_bos=False, special=True))


def greedy(llama: Any, prompt: str, n: int, keep: bool = False) -> tuple[list[int], list[Any]]:
    """``n`` greedy tokens (and, with ``keep``, the log-probabilities each was chosen from)."""
    _start(llama, prompt)
    tokens: list[int] = []
    kept: list[Any] = []
    for _ in range(n):
        lp = _logprobs(llama)
        tokens.append(int(lp.argmax()))
        if keep:
            kept.append(lp.astype("float32"))
        llama.eval([tokens[-1]])
    return tokens, kept


def teacher_forced(llama: Any, prompt: str, reference: list[int], ref_lp: list[Any]) -> tuple[int, float]:
    """Fed the reference reply: positions whose top token is the reference's, and the summed KL(ref || model)."""
    import numpy as np

    _start(llama, prompt)
    hits, kl = 0, 0.0
    for token, ref in zip(reference, ref_lp, strict=True):
        lp = _logprobs(llama)
        hits += int(lp.argmax()) == token
        kl += float(np.sum(np.exp(ref) * (ref - lp)))
        llama.eval([token])
    return hits, kl


def fidelity(paths: dict[str, tuple[Path, Path | None]], n: int) -> dict[str, dict[str, float]]:
    """Agreement of every model with the runtime adapter (see the module doc)."""
    from codeloop.llm.llama_load import load_llama
    from codeloop.llm.settings import EmbeddedSettings

    settings = EmbeddedSettings.resolve(n_ctx=512)

    def load(name: str) -> Any:
        path, lora = paths[name]
        return load_llama(path, settings, lora_path=lora)

    adapter = load("adapter")
    references = [greedy(adapter, p, n, keep=True) for p in FIDELITY_PROMPTS]
    adapter.close()
    figures: dict[str, dict[str, float]] = {}
    positions = n * len(FIDELITY_PROMPTS)
    for name in paths:
        if name == "adapter":
            continue
        llama = load(name)
        forced = [
            teacher_forced(llama, p, ref, lp)
            for p, (ref, lp) in zip(FIDELITY_PROMPTS, references, strict=True)
        ]
        own = [greedy(llama, p, n)[0] for p in FIDELITY_PROMPTS]
        llama.close()
        same = sum(
            a == b
            for mine, (ref, _) in zip(own, references, strict=True)
            for a, b in zip(mine, ref, strict=True)
        )
        figures[name] = {
            "top1": sum(h for h, _ in forced) / positions,
            "kl": sum(k for _, k in forced) / positions,
            "greedy": same / positions,
        }
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="qwen-coder-0.5b")
    ap.add_argument("--adapter", required=True, help="a registered adapter name or a path to an adapter GGUF")
    ap.add_argument(
        "--merge",
        default="base,q8_0,f16",
        help="merged tensor types to build and time, comma-separated (base, q8_0, f16; empty: none)",
    )
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument(
        "--fidelity-tokens", type=int, default=48, help="greedy tokens per fidelity prompt (0: skip)"
    )
    args = ap.parse_args()
    from codeloop.selftrain.merge import merge_lora

    base = get_model(args.base, n_ctx=1024)
    base_path: Path = base.path  # type: ignore[attr-defined]
    lora_path = find_adapter(args.adapter)
    models: dict[str, Any] = {
        "base": base,
        "adapter": get_model(f"{args.base}+{args.adapter}:lora", n_ctx=1024),
    }
    paths: dict[str, tuple[Path, Path | None]] = {
        "base": (base_path, None),
        "adapter": (base_path, lora_path),
    }
    merges: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="codeloop-merge-bench-") as tmp:
        for kind in [k.strip() for k in args.merge.split(",") if k.strip()]:
            result = merge_lora(base_path, lora_path, Path(tmp) / f"merged-{kind}.gguf", tensor_type=kind)
            merges[kind] = {
                "seconds": result.seconds,
                "bytes": result.bytes,
                "types_equal_base": result.types_equal_base,
            }
            models[f"merged-{kind}"] = get_model(f"gguf:{result.path}", n_ctx=1024)
            paths[f"merged-{kind}"] = (result.path, None)
        names = list(models)
        for model in models.values():
            per_token(model, 8)  # warm every model
        times: dict[str, list[float]] = {name: [] for name in names}
        for trial in range(args.trials):
            order = names[trial % len(names) :] + names[: trial % len(names)]
            for name in order if trial % 2 == 0 else order[::-1]:
                times[name].append(per_token(models[name], args.tokens))
        for model in models.values():
            model.runtime.close()
        agreement = fidelity(paths, args.fidelity_tokens) if args.fidelity_tokens > 0 else {}
    medians = {name: statistics.median(times[name]) for name in names}
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(
        f"python {platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    for name in names:
        ratio = medians[name] / medians["base"]
        agree = agreement.get(name)
        fid = (
            f"  vs adapter: top1 {agree['top1']:.3f} KL {agree['kl']:.4f} greedy {agree['greedy']:.3f}"
            if agree
            else ""
        )
        extra = f"  (merge {merges[name[7:]]['seconds']:.0f} s)" if name.startswith("merged-") else ""
        print(f"{name:14s} {medians[name] * 1000:6.1f} ms/token  {ratio:.3f}x base{fid}{extra}")
    print("aim: <= 1.1x base")
    print(
        json.dumps(
            {
                "ms_per_token": {n: round(m * 1000, 2) for n, m in medians.items()},
                "ratio_to_base": {n: round(m / medians["base"], 3) for n, m in medians.items()},
                "agreement_with_adapter": agreement,
                "merges": merges,
                "trials": args.trials,
                "tokens": args.tokens,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
