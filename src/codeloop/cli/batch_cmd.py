"""``codeloop run --batch TASKS.jsonl``: many tasks, results to a JSONL file, here or on Ray.

A face only: it reads the options, picks the map (this process, or ``--ray ADDRESS``), calls
:func:`codeloop.scale.batch.run_batch` and prints a summary (``--json``: one JSON object).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.errors import ConfigError
from codeloop.scale.batch import (
    BatchInputError,
    LocalTaskMap,
    TaskMap,
    default_out_path,
    load_tasks,
    run_batch,
)

__all__ = ["run_batch_command"]


def run_batch_command(args: argparse.Namespace) -> int:
    from codeloop.cli.run_cmd import limits_from, load_model, strategy_from

    if args.task not in (None, "-"):
        print("codeloop run: give a task or --batch TASKS.jsonl, not both", file=sys.stderr)
        return 2
    try:
        tasks = load_tasks(args.batch)
        out = Path(args.out) if args.out is not None else default_out_path(args.batch)
        if out.resolve() == Path(args.batch).resolve():
            raise BatchInputError(f"--out {out} is the tasks file itself: choose another path")
        limits, strategy = limits_from(args), strategy_from(args)
    except (BatchInputError, ConfigError) as e:
        print(f"codeloop run: {e}", file=sys.stderr)
        return 2
    from codeloop.evals.progress import Progress

    progress = Progress(len(tasks), "tasks", enabled=not args.no_progress)
    try:
        if args.ray is None:
            mapper: TaskMap = LocalTaskMap(load_model(args))
            summary = run_batch(tasks, out, mapper, limits=limits, strategy=strategy, progress=progress)
        else:
            from codeloop.cli.scale_args import ray_options
            from codeloop.scale import RayTaskMap

            with RayTaskMap.open(
                ray_options(args), model=args.model, base_url=args.base_url, cell_timeout=limits.cell_timeout
            ) as ray_map:
                summary = run_batch(tasks, out, ray_map, limits=limits, strategy=strategy, progress=progress)
    except BatchInputError as e:
        print(f"codeloop run: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses.items()))
        print(
            f"{summary.total} tasks ({summary.resumed} from an earlier run, {summary.ran} run now): {counts}; "
            f"results in {summary.out}"
        )
    return 0 if summary.answered == summary.total else 1
