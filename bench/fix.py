"""``codeloop fix`` benchmark: fixed rate, rounds and seconds per case on small buggy modules.

Each directory of ``bench/fix/cases`` is one small project written for this benchmark: a module
with one bug (off-by-one, wrong operator, mutable default, swallowed exception, endless loop,
wrong base case, date parsing, sorting key...) and the pytest tests it fails. Every case runs
through the Python API (``codeloop.workflows.fix.fix``) with one model loaded once, exactly as
``codeloop fix CASE_DIR`` would, and its files are checked unchanged afterwards.

Cases named ``dev_*`` are the development set: prompt work may look at them. The others are the
reported set and are never used for tuning; the two figures are printed apart::

    flock /tmp/codeloop-bench.lock .venv/bin/python bench/fix.py               # all cases
    .venv/bin/python bench/fix.py --split dev                                  # the development set
    .venv/bin/python bench/fix.py --cases gcd_hang,mean_empty --rounds 2

A benchmark, not a test: it prints figures and never fails on an unfixed case.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "fix" / "cases"


def _digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            st = path.stat()
            h.update(f"{path.relative_to(directory)}:{st.st_mtime_ns}:".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: the whole split)")
    parser.add_argument("--model", default=None, help="model name (default: the configured default)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--test-timeout", type=float, default=3.0)
    parser.add_argument("--json-out", type=Path, default=None, help="write the per-case records here")
    args = parser.parse_args(argv)

    from codeloop.llm import get_model
    from codeloop.workflows.fix import fix

    names = sorted(p.name for p in CASES.iterdir() if p.is_dir())
    if args.cases:
        wanted = set(args.cases.split(","))
        names = [n for n in names if n in wanted]
    elif args.split != "all":
        names = [n for n in names if n.startswith("dev_") == (args.split == "dev")]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"environment: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}, load average {os.getloadavg()[0]:.1f}")
    start = time.monotonic()
    model = get_model(args.model)
    load_s = time.monotonic() - start
    print(f"model: {model.name} (loaded in {load_s:.1f} s); rounds {args.rounds}, samples {args.samples}; {len(names)} cases")
    records: list[dict[str, Any]] = []
    for name in names:
        directory = CASES / name
        before = _digest(directory)
        t0 = time.monotonic()
        try:
            result = fix([directory], model=model, rounds=args.rounds, samples=args.samples,
                         test_timeout=args.test_timeout)
            rec = {"case": name, "fixed": result.fixed, "rounds": result.rounds, "seconds": time.monotonic() - t0,
                   "before": f"{result.tests_before['passed']}/{result.tests_before['collected']}",
                   "after": f"{result.tests_after['passed']}/{result.tests_after['collected']}",
                   "timings": result.timings, "diff": result.diff, "error": ""}
        except Exception as e:  # a benchmark records the failure and goes on
            rec = {"case": name, "fixed": False, "rounds": 0, "seconds": time.monotonic() - t0, "before": "?",
                   "after": "?", "timings": {}, "diff": "", "error": f"{type(e).__name__}: {e}"}
        rec["untouched"] = _digest(directory) == before
        records.append(rec)
        t = rec["timings"]
        print(f"  {name:<24} {'FIXED' if rec['fixed'] else 'no   '} rounds {rec['rounds']}  tests {rec['before']} -> "
              f"{rec['after']}  {rec['seconds']:6.1f} s (model {t.get('model_s', 0):5.1f} s, tests "
              f"{t.get('tests_s', 0) + t.get('trace_s', 0):5.1f} s){'' if rec['untouched'] else '  FILES CHANGED!'}"
              f"{'  ' + rec['error'] if rec['error'] else ''}", flush=True)

    def summary(label: str, recs: list[dict[str, Any]]) -> None:
        if not recs:
            return
        fixed = [r for r in recs if r["fixed"]]
        secs = [r["seconds"] for r in recs]
        model_share = sum(r["timings"].get("model_s", 0) for r in recs) / max(sum(secs), 1e-9)
        print(f"{label}: fixed {len(fixed)}/{len(recs)} = {100 * len(fixed) / len(recs):.0f}%; rounds of fixed cases "
              f"median {statistics.median([r['rounds'] for r in fixed]) if fixed else 0:g}; seconds per case median "
              f"{statistics.median(secs):.1f}, max {max(secs):.1f}; model time {100 * model_share:.0f}% of the total")

    print()
    summary("reported set (never tuned on)", [r for r in records if not r["case"].startswith("dev_")])
    summary("development set", [r for r in records if r["case"].startswith("dev_")])
    summary("all cases", records)
    print(f"user files untouched in every case: {all(r['untouched'] for r in records)}")
    if args.json_out:
        args.json_out.write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
