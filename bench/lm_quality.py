"""Quality after a fixed time budget: held-out bits per byte of the Transformer, the LSTM and a
unigram byte baseline, all on the same held-out files of the same corpus (by default the
interpreter's standard library, split by file).

Both models are trained by the real CLI (``codeloop lm train``) with the same tokeniser
settings, seed, batch, context and time budget, at (nearly) equal parameter counts: the LSTM
gets more layers, since an LSTM layer has 8·d² weights and a Transformer block 12·d². Then
``codeloop lm eval DIR --json`` scores each on the held-out split. The models stay in ``--out``
(the Transformer is the one ``bench/complete`` can use with ``--model lm:OUT/transformer``).

Run:  flock /tmp/codeloop-bench.lock .venv/bin/python bench/lm_quality.py --budget 600 --threads 1 --out /tmp/lm-quality
Aim: the Transformer clearly below the LSTM, both far below the unigram baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

COMMON = ["--vocab-size", "2048", "--context", "256", "--batch-size", "16", "--seed", "1337"]
ARCHS = {
    "transformer": ["--arch", "transformer", "--d-model", "128", "--layers", "4", "--heads", "4"],
    "lstm": ["--arch", "lstm", "--d-model", "128", "--layers", "6"],
}


def codeloop(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "codeloop", *args]
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=600, help="training seconds per model (600)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/lm-quality")
    ap.add_argument("--corpus", nargs="*", default=[], help="default: the standard library")
    ap.add_argument("--archs", default="transformer,lstm")
    args = ap.parse_args()
    out = Path(args.out)
    print("command:", " ".join([sys.executable, *sys.argv]))
    import torch

    print(
        "environment:",
        json.dumps(
            {
                "python": sys.version.split()[0],
                "torch": torch.__version__,
                "machine": platform.machine(),
                "cpus_usable": len(os.sched_getaffinity(0)),
                "threads": args.threads,
                "load_avg_1m": os.getloadavg()[0],
            }
        ),
    )
    corpus = ["--corpus", *args.corpus] if args.corpus else []
    rows: dict[str, dict[str, Any]] = {}
    for arch in args.archs.split(","):
        target = out / arch
        if target.exists():
            shutil.rmtree(target)  # this benchmark's own previous output
        trained = codeloop(
            "lm",
            "train",
            "--out",
            str(target),
            *COMMON,
            *ARCHS[arch],
            *corpus,
            "--time-budget",
            str(args.budget),
            "--threads",
            str(args.threads),
            "--json",
        )
        scored = codeloop("lm", "eval", str(target), "--threads", str(args.threads), "--json")
        rows[arch] = {"train": trained, "eval": scored}
        print(
            f"  {arch}: {trained['parameters']:,} parameters, {trained['step']} steps, "
            f"{trained['tokens']:,} tokens, held-out {scored['bits_per_byte']:.3f} bits/byte",
            flush=True,
        )
    unigram = next(iter(rows.values()))["eval"]["unigram_bits_per_byte"]
    first = next(iter(rows.values()))["eval"]
    print(
        f"\nheld-out: {first['files']} files, {first['bytes']:,} bytes; budget {args.budget:.0f} s per model, "
        f"{args.threads} thread(s)\n"
    )
    print("| model | parameters | steps | training tokens | held-out bits/byte |")
    print("|---|---|---|---|---|")
    for arch, r in rows.items():
        t, e = r["train"], r["eval"]
        print(
            f"| {arch} | {t['parameters']:,} | {t['step']:,} | {t['tokens']:,} | {e['bits_per_byte']:.3f} |"
        )
    print(f"| unigram bytes | 256 | - | - | {unigram:.3f} |")
    if "transformer" in rows and "lstm" in rows:
        ratio = rows["transformer"]["eval"]["bits_per_byte"] / rows["lstm"]["eval"]["bits_per_byte"]
        print(f"\nTransformer / LSTM bits per byte: {ratio:.3f}")
    print(
        json.dumps(
            {
                a: {
                    "parameters": r["train"]["parameters"],
                    "steps": r["train"]["step"],
                    "tokens": r["train"]["tokens"],
                    "bits_per_byte": r["eval"]["bits_per_byte"],
                }
                for a, r in rows.items()
            }
            | {"unigram_bits_per_byte": unigram}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
