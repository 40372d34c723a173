"""Benchmark ``codeloop complete``: pass rate (execution-based) and latency, warm and cold.

Each case in ``bench/complete/cases/`` is a Python file with one ``<CURSOR>`` where code is missing,
then a ``# ==== tests ====`` line and assertions (a ``# lines: N`` line there asks for N lines).
The completion is inserted at the cursor, the file and its tests run in codeloop's sandbox, and the
case passes when every assertion holds. The tests are never shown to the model.

Latency:
- warm: one process, the model loaded once (like ``codeloop complete --serve``), one completion per
  case, wall time of ``complete()``;
- cold: a fresh ``codeloop complete FILE:LINE:COL --json`` process per case (imports, model load,
  completion), wall time; beside it the floor of a bare ``python -c pass`` and of
  ``codeloop --help`` measured in the same run.

    flock /tmp/codeloop-bench.lock .venv/bin/python bench/complete.py [--model NAME] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "complete" / "cases"
MARK = "<CURSOR>"
SPLIT = "# ==== tests ===="


@dataclass
class Case:
    name: str
    source: str
    line: int
    col: int
    lines: int
    tests: str


def load_cases(folder: Path = CASES) -> list[Case]:
    cases = []
    for path in sorted(folder.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        code, sep, tests = text.partition(SPLIT + "\n")
        if not sep or code.count(MARK) != 1:
            raise SystemExit(f"{path}: needs one {MARK} and a '{SPLIT}' line")
        at = code.index(MARK)
        line = code.count("\n", 0, at) + 1
        col = at - (code.rfind("\n", 0, at) + 1) + 1
        lines = 1
        for row in tests.splitlines():
            if row.startswith("# lines:"):
                lines = int(row.split(":", 1)[1])
        cases.append(Case(path.stem, code.replace(MARK, "", 1), line, col, lines, tests))
    return cases


def insert(case: Case, completion: str) -> str:
    from codeloop.workflows.complete import split_at_cursor

    before, after = split_at_cursor(case.source, case.line, case.col)
    return before + completion + after


def passes(sandbox: object, program: str) -> tuple[bool, str]:
    code = f"exec(compile({program!r}, 'case.py', 'exec'), {{'__name__': '__main__'}})"
    result = sandbox.run(code, timeout=10)  # type: ignore[attr-defined]
    if result.status == "ok":
        return True, ""
    error = result.error
    return False, f"{result.status}: {error.ename if error else ''} {error.evalue if error else ''}".strip()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_process(cmd: list[str], stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model name (default: the configured default)")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process latency")
    parser.add_argument("--cold-cases", type=int, default=0, help="cold runs on the first N cases (0: all)")
    parser.add_argument("--json-out", default=None, help="write per-case results to this JSON file")
    args = parser.parse_args()

    from codeloop.llm import get_model
    from codeloop.sandbox import Sandbox
    from codeloop.workflows.complete import complete

    cases = load_cases()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, {len(cases)} cases"
    )
    t0 = time.perf_counter()
    model = get_model(args.model)
    complete(model, "def add(a, b):\n    return \n", 2, 12)  # warm-up, not counted
    print(f"model {model.name}: loaded and warmed up in {time.perf_counter() - t0:.2f} s")

    rows = []
    warm: list[float] = []
    model_s: list[float] = []
    with Sandbox() as sandbox:
        for case in cases:
            start = time.perf_counter()
            c = complete(model, case.source, case.line, case.col, lines=case.lines)
            wall = time.perf_counter() - start
            ok, why = passes(sandbox, insert(case, c.completion) + "\n" + case.tests)
            warm.append(wall)
            model_s.append(c.model_seconds)
            rows.append({"case": case.name, "lines": case.lines, "passed": ok, "why": why,
                         "completion": c.completion, "raw": c.raw, "warm_s": round(wall, 4),
                         "prompt_tokens": c.prompt_tokens})  # fmt: skip
            mark = "PASS" if ok else "FAIL"
            print(
                f"  {mark} {case.name:28s} {wall * 1000:6.0f} ms  {c.completion!r}"
                + (f"  ({why})" if why else "")
            )
    passed = sum(r["passed"] for r in rows)
    single = [r["warm_s"] for r in rows if r["lines"] == 1]
    print(f"\npass rate: {passed}/{len(rows)} = {passed / len(rows):.1%}")
    print(
        f"warm latency, all: median {statistics.median(warm) * 1000:.0f} ms, p95 {pct(warm, 0.95) * 1000:.0f} ms"
    )
    print(f"warm latency, single line ({len(single)}): median {statistics.median(single) * 1000:.0f} ms, "
          f"p95 {pct(single, 0.95) * 1000:.0f} ms; model share {sum(model_s) / sum(warm):.0%}")  # fmt: skip

    if not args.no_cold:
        exe = Path(sys.executable).with_name("codeloop")
        floor_py = [timed_process([sys.executable, "-c", "pass"])[0] for _ in range(5)]
        floor_cli = [timed_process([str(exe), "--help"])[0] for _ in range(5)]
        cold: list[float] = []
        agree = 0
        chosen = cases[: args.cold_cases] if args.cold_cases else cases
        with tempfile.TemporaryDirectory(prefix="codeloop-bench-complete-") as tmp:
            for case, row in zip(chosen, rows, strict=False):
                target = Path(tmp) / f"{case.name}.py"
                target.write_text(case.source, encoding="utf-8")
                cmd = [
                    str(exe),
                    "complete",
                    f"{target}:{case.line}:{case.col}",
                    "--lines",
                    str(case.lines),
                    "--json",
                ]
                if args.model:
                    cmd += ["--model", args.model]
                wall, proc = timed_process(cmd)
                if proc.returncode != 0:
                    print(f"  cold run failed for {case.name}: {proc.stderr.strip()[-300:]}")
                    continue
                cold.append(wall)
                agree += json.loads(proc.stdout)["completion"] == row["completion"]
                row["cold_s"] = round(wall, 4)
        print(f"cold latency ({len(cold)} fresh processes): median {statistics.median(cold):.2f} s, "
              f"p95 {pct(cold, 0.95):.2f} s; same completion as warm: {agree}/{len(cold)}")  # fmt: skip
        print(f"floors in this run: python -c pass {statistics.median(floor_py) * 1000:.0f} ms, "
              f"codeloop --help {statistics.median(floor_cli) * 1000:.0f} ms; "
              f"cold/warm median ratio {statistics.median(cold) / statistics.median(warm):.1f}x")  # fmt: skip
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
