"""Paired comparison of two runs on the same problems: gained, lost and the exact sign test.

Greedy pass@1 flips problems both ways under any change to a small model; this says whether
B's difference from A is more than that noise (``codeloop.evals.paired``). Each run is an eval
results JSONL (``codeloop eval ... --out X.jsonl`` writes ``X.jsonl_results.jsonl``), a
``bench/agent_tasks.py --out`` JSONL, or an agent_tasks printed log; ``FILE::CONFIG`` picks one
configuration of a file holding several (as printed in its brackets, ``default`` for none).

Run:
    .venv/bin/python bench/paired.py base.jsonl_results.jsonl tuned.jsonl_results.jsonl
    .venv/bin/python bench/paired.py "fresh.txt::--model qwen-coder-0.5b" "fresh.txt::--model qwen-coder-0.5b+st3"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.evals.errors import EvalError
from codeloop.evals.paired import compare, read_scores


def _run(spec: str) -> dict[str, float]:
    path, _, config = spec.partition("::")
    return read_scores(Path(path), config or None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="the reference run: FILE or FILE::CONFIG")
    ap.add_argument("b", help="the run compared with it")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        result = compare(_run(args.a), _run(args.b))
    except EvalError as e:
        print(f"paired: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, **result.to_dict()}))
        return 0
    print(f"A: {args.a}\nB: {args.b}")
    print(
        f"{result.problems} problems in both: A {result.a_score:g}, B {result.b_score:g}; "
        f"B gained {result.gained}, lost {result.lost}; sign test p = {result.p_value:.3f}"
        + ("" if not (result.only_a or result.only_b) else f" (left out: {result.only_a} only in A, {result.only_b} only in B)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
