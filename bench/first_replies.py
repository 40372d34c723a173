"""Screen prompt changes fast: the model's first reply to each task, run once, right or wrong.

The whole loop (``bench/agent_tasks.py``) takes about 16 minutes for both task sets on 2 cores;
one greedy first reply per task takes about 4.5. A prompt change that does not give more right
first replies on *both* sets is rarely worth a full run. Each configuration builds its messages
with the agent's own ``Agent.initial_messages``, so what is measured is the real prompt::

    .venv/bin/python bench/first_replies.py                              # default vs the old prompt
    .venv/bin/python bench/first_replies.py --configs default,no-examples --out first.jsonl
    .venv/bin/python bench/first_replies.py --model qwen-coder-1.5b --limit 10

A reply counts as right when its first code block runs in a fresh sandbox session and what it
prints states the known answer (the same checker as ``agent_tasks.py``). A benchmark: it prints
figures and never fails on a wrong answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from codeloop import Agent, get_model
from codeloop.agent import Strategy
from codeloop.agent.cells import outcome_from_run
from codeloop.agent.generation import generate
from codeloop.agent.observation import evidence_of
from codeloop.llm import Sampling
from codeloop.sandbox import Sandbox
from codeloop.text import parse_reply

BENCH = Path(__file__).resolve().parent

# name -> how it differs from the default strategy
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "fixed-examples": {"select_examples": False},  # the same two examples for every task
    "old": {"restate_task": False, "select_examples": False},  # before the instruction was restated
    "no-examples": {"few_shot": False},
    "baseline": dataclasses.asdict(Strategy.baseline()),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model (default: the embedded one)")
    parser.add_argument("--configs", default="default,old", help=f"comma-separated, of: {', '.join(CONFIGS)}")
    parser.add_argument(
        "--tasks",
        type=Path,
        action="append",
        default=None,
        help="task folder, repeatable (default: bench/tasks and bench/heldout)",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N tasks of each folder")
    parser.add_argument("--out", type=Path, default=None, help="write each reply and its output as JSONL")
    args = parser.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")

    import agent_tasks as bench  # this script's own folder is on sys.path

    folders = args.tasks or [BENCH / "tasks", BENCH / "heldout"]
    sets = {folder.name: bench.load_tasks(folder)[: args.limit or None] for folder in folders}
    if not any(sets.values()):
        raise SystemExit(f"no tasks in {', '.join(map(str, folders))}")
    model = get_model(args.model) if args.model else get_model()
    print(f"model: {args.model or 'embedded default'}; sets: {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}")
    right: dict[tuple[str, str], int] = {}
    seconds: dict[str, list[float]] = {c: [] for c in configs}
    for config in configs:
        strategy = dataclasses.replace(Strategy(), **CONFIGS[config])
        agent = Agent(model, strategy=strategy)
        for set_name, tasks in sets.items():
            for task in tasks:
                messages = agent.initial_messages(task["task"])
                gen = generate(model, messages, Sampling(max_tokens=512))
                seconds[config].append(gen.seconds)
                code = parse_reply(gen.text).code
                shown = None
                if code is not None:
                    with Sandbox(timeout=15) as sb:
                        outcome, _ = outcome_from_run(sb.run(code))
                    shown = evidence_of(outcome)
                ok = bool(shown) and bench.check_answer(task, shown[-300:])
                right[(config, set_name)] = right.get((config, set_name), 0) + ok
                mark = "ok " if ok else "BAD"
                print(f"{mark} [{config}] {task['id']:<10} {gen.seconds:4.1f}s {(shown or '')[-50:]!r}", flush=True)
                if args.out:
                    with args.out.open("a", encoding="utf-8") as f:
                        row = {"config": config, "id": task["id"], "ok": ok, "reply": gen.text, "shown": shown}
                        f.write(json.dumps(row) + "\n")
        agent.close()
    print()
    for config in configs:
        parts = [f"{name} {right.get((config, name), 0)}/{len(tasks)}" for name, tasks in sets.items()]
        median = sorted(seconds[config])[len(seconds[config]) // 2]
        print(f"[{config}] first replies right: {', '.join(parts)}; median {median:.1f} s per reply")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s")
    sys.exit(code)
