"""Benchmark ``codeloop analyze`` on a seeded package: recall of the problems planted on purpose.

Every planted problem in ``bench/analyze/seeded/`` carries a ``# seeded: RULE[, RULE]`` comment on
the line where it is; a rule counts as found when analyze reports that rule on that line of that
file. Also printed: the findings nobody planted (to read, not a score), the wall time, and, beside
it, the time of ruff alone on the same files (the floor).

    flock /tmp/codeloop-bench.lock .venv/bin/python bench/analyze.py [--model NAME]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEEDED = HERE / "analyze" / "seeded"
_MARK = re.compile(r"#\s*seeded:\s*([A-Za-z0-9_\-, ]+)")


def expected(root: Path = SEEDED) -> set[tuple[str, int, str]]:
    out = set()
    for path in sorted(root.rglob("*.py")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = _MARK.search(line)
            if m:
                for rule in m.group(1).split(","):
                    out.add((str(path.relative_to(root)), i, rule.strip()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="also run the model review with this model")
    args = parser.parse_args()
    from codeloop.workflows.analyze import analyze

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs")
    want = expected()
    os.chdir(SEEDED)
    start = time.perf_counter()
    report = analyze(["."])
    wall = time.perf_counter() - start
    files = sorted(str(p) for p in Path(".").rglob("*.py"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--exit-zero", "-q", *files],
                   capture_output=True, check=False)  # fmt: skip
    floor = time.perf_counter() - start
    got = {(os.path.normpath(f.path), f.line, f.rule) for f in report.findings}
    found = {w for w in want if w in got}
    missed = sorted(want - found)
    extra = sorted(g for g in got if g not in want)
    print(f"seeded problems: {len(want)} in {len(files)} files")
    print(f"recall: {len(found)}/{len(want)} = {len(found) / len(want):.1%}")
    for m in missed:
        print(f"  missed: {m[0]}:{m[1]} {m[2]}")
    print(f"findings not planted: {len(extra)}")
    for e in extra:
        print(f"  extra: {e[0]}:{e[1]} {e[2]}")
    print(f"analyze (no model) wall time {wall:.2f} s; ruff alone {floor:.2f} s (ratio {wall / floor:.1f}x)")
    if args.model:
        from codeloop.llm import get_model
        from codeloop.workflows.analyze import review

        model = get_model(args.model)
        start = time.perf_counter()
        suggestions = list(review(report, model))
        print(f"model review ({model.name}): {len(suggestions)} suggestion(s) tied to real lines "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        for s in suggestions:
            print(f"  {s.path}:{s.line}: {s.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
