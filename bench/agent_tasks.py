"""Task-suite benchmark of the agent: success rate, steps and seconds per task.

Runs every task of ``bench/tasks/*.jsonl`` through ``codeloop run --json`` (a fresh process
per task, as a user would) and checks the answer against the known one. Give ``--compare``
to run other configurations side by side on the same tasks, e.g.::

    .venv/bin/python bench/agent_tasks.py                         # embedded default model
    .venv/bin/python bench/agent_tasks.py --compare=--baseline --compare="--votes 3"
    .venv/bin/python bench/agent_tasks.py --model openai:gpt-4o-mini --ids arith-1,nt-4
    .venv/bin/python bench/agent_tasks.py --tasks bench/heldout    # the held-out set

``bench/heldout`` holds tasks of the same kinds that prompt work is never tuned on: a change
to the loop counts only if it does not lose there what it gains on ``bench/tasks``.

A benchmark, not a test: it prints figures and never fails on a wrong answer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = Path(__file__).resolve().parent / "tasks"
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def load_tasks(directory: Path = TASKS_DIR) -> list[dict[str, Any]]:
    """Every task of every ``*.jsonl`` file in ``directory``, in file order."""
    tasks: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    tasks.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise SystemExit(f"{path}:{n}: not valid JSON: {e}") from e
    return tasks


def _numbers(text: str) -> list[str]:
    return [m.replace(",", "") for m in _NUMBER.findall(text)]


def _matches(claimed: str, expected: float) -> bool:
    if isinstance(expected, int) and re.fullmatch(r"-?\d+", claimed):
        return int(claimed) == expected  # exact: 479001601 is not 12!, however close as floats
    try:
        value = float(claimed)
    except ValueError:
        return False
    if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
        return True
    decimals = len(claimed.split(".")[1]) if "." in claimed and "e" not in claimed.lower() else 0
    return decimals > 0 and round(expected, decimals) == value


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\"'`*]", "", text.lower()).split())


def check_answer(task: dict[str, Any], answer: str | None) -> bool:
    """Whether ``answer`` states the task's known answer (see the ``check`` kinds below)."""
    if not answer:
        return False
    expected, kind = task["answer"], task.get("check", "text")
    if kind == "number":
        task_numbers = set(_numbers(task["task"]))
        found = _numbers(answer)
        fresh = [n for n in found if n not in task_numbers]
        candidates = fresh or found[-1:]
        return any(_matches(n, expected) for n in candidates)
    if kind == "list":
        found = [float(n) for n in _numbers(answer)]
        want = [float(x) for x in expected]
        return any(found[i : i + len(want)] == want for i in range(len(found) - len(want) + 1))
    if kind == "bool":
        words = set(re.findall(r"[a-z]+", answer.lower()))
        yes, no = bool(words & {"true", "yes"}), bool(words & {"false", "no", "not"})
        return yes and not no if expected else no and not yes
    if kind == "letter":
        quoted = re.findall(r"['\"`]([a-zA-Z])['\"`]", answer)
        last = answer.strip().rstrip(".").split()[-1].strip("'\"`") if answer.strip() else ""
        return str(expected) in quoted or last == str(expected)
    return _norm(str(expected)) in _norm(answer)


@dataclass
class Outcome:
    task_id: str
    ok: bool
    answer: str | None
    status: str
    steps: int
    seconds: float
    tokens: int


def run_task(task: dict[str, Any], model: str | None, extra: list[str], timeout: float) -> Outcome:
    """One task through ``codeloop run --json`` in a fresh process."""
    cmd = [sys.executable, "-m", "codeloop", "run", "--json", *(["--model", model] if model else []), *extra]
    cmd.append(task["task"])
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return Outcome(task["id"], False, None, "bench-timeout", 0, time.perf_counter() - start, 0)
    seconds = time.perf_counter() - start
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Outcome(task["id"], False, None, f"crashed: {tail[0][:80]}", 0, seconds, 0)
    code_steps = sum(1 for s in data.get("steps", []) if s.get("code"))
    answer = data.get("answer")
    return Outcome(
        task["id"],
        check_answer(task, answer),
        answer,
        str(data.get("status")),
        code_steps,
        seconds,
        int(data.get("usage", {}).get("completion_tokens", 0)),
    )


def _environment() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
        ).stdout.strip()
    except OSError:
        commit = "?"
    return (
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, git {commit or '?'}"
    )


def summarise(label: str, outcomes: list[Outcome]) -> dict[str, float]:
    n = len(outcomes)
    solved = sum(o.ok for o in outcomes)
    summary = {
        "success": solved / n if n else 0.0,
        "median_steps": statistics.median(o.steps for o in outcomes) if n else 0.0,
        "median_s": statistics.median(o.seconds for o in outcomes) if n else 0.0,
        "mean_s": statistics.fmean(o.seconds for o in outcomes) if n else 0.0,
    }
    print(
        f"{label}: {solved}/{n} solved ({summary['success']:.0%}), median steps {summary['median_steps']:g}, "
        f"median {summary['median_s']:.1f} s/task, mean {summary['mean_s']:.1f} s/task"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model for codeloop run (default: the embedded one)")
    parser.add_argument("--args", default="", help="extra arguments for the first configuration")
    parser.add_argument(
        "--compare", action="append", default=[], help="extra arguments of another configuration"
    )
    parser.add_argument(
        "--tasks",
        type=Path,
        default=TASKS_DIR,
        help="folder of *.jsonl task files (default: bench/tasks; bench/heldout is the held-out set)",
    )
    parser.add_argument("--ids", default="", help="comma-separated task ids to run (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="run only the first N tasks")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per task before giving up")
    parser.add_argument("--out", type=Path, default=None, help="write per-task results as JSONL here")
    args = parser.parse_args(argv)

    tasks = load_tasks(args.tasks)
    if not tasks:
        raise SystemExit(f"no tasks in {args.tasks}")
    if args.ids:
        wanted = set(args.ids.split(","))
        tasks = [t for t in tasks if t["id"] in wanted]
    if args.limit:
        tasks = tasks[: args.limit]
    configs = [args.args, *args.compare]
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print("environment:", _environment())
    print(f"model: {args.model or 'embedded default'}; {len(tasks)} tasks; configurations: {configs}")
    print()

    results: dict[str, list[Outcome]] = {c: [] for c in configs}
    for task in tasks:
        # Configurations alternate per task so machine load drifts hit them alike.
        for config in configs:
            o = run_task(task, args.model, shlex.split(config), args.timeout)
            results[config].append(o)
            mark = "ok " if o.ok else "BAD"
            answer = (o.answer or "").replace("\n", " ")[:60]
            print(
                f"{mark} {task['id']:<8} [{config or 'default'}] {o.status:<10} steps={o.steps} "
                f"{o.seconds:5.1f}s  {answer!r} (want {task['answer']!r})",
                flush=True,
            )
            if args.out:
                with args.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"config": config, **o.__dict__}) + "\n")
    print()
    summaries = {c: summarise(f"[{c or 'default'}]", results[c]) for c in configs}
    base = summaries[configs[0]]
    for config in configs[1:]:
        s = summaries[config]
        ratio = s["median_s"] / base["median_s"] if base["median_s"] else float("nan")
        print(
            f"[{config}] vs [{configs[0] or 'default'}]: success {s['success'] - base['success']:+.0%}, "
            f"median time x{ratio:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
