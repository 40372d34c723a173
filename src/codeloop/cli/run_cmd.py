"""``codeloop run "TASK"``: the model writes and runs code until it can answer."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from codeloop.agent import Agent, Limits, Strategy, TaskStatus, fan_out
from codeloop.cli.argtypes import positive_float, positive_int
from codeloop.cli.console import ConsolePrinter
from codeloop.errors import HistoryError

DESCRIPTION = (
    "The main job: the model writes Python, codeloop runs it in the sandbox, shows the output, "
    "lets the model repair errors, and prints the answer last. The run is stored in the history "
    "(see 'codeloop history'); figures are saved next to it and their paths printed. "
    "Exit status: 0 when an answer was produced, 1 otherwise, 130 on Ctrl-C."
)


def add_loop_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``chat``: limits and the loop's strategy."""
    d = Limits()
    parser.add_argument(
        "--max-steps",
        type=positive_int,
        default=d.max_steps,
        help=f"most cells per task (default {d.max_steps})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=d.max_seconds,
        help=f"seconds per task, all steps (default {d.max_seconds:g})",
    )
    parser.add_argument(
        "--cell-timeout",
        type=positive_float,
        default=d.cell_timeout,
        help=f"seconds per cell (default {d.cell_timeout:g})",
    )
    parser.add_argument(
        "--max-tokens",
        type=positive_int,
        default=d.max_tokens,
        help=f"completion tokens per task (default {d.max_tokens})",
    )
    parser.add_argument(
        "--votes",
        type=positive_int,
        default=Strategy().votes,
        help="sample this many programs on the first step and keep the output most agree on (default %(default)s)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="the plain loop, for comparison: no examples, no nudge, no value probe, no answer grounding",
    )
    parser.add_argument("--no-history", action="store_true", help="do not store this in the history")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", help="what to compute; omit or give '-' to read it from stdin")
    add_loop_options(parser)
    add_batch_arguments(parser)


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    from codeloop.cli.scale_args import add_ray_arguments

    group = parser.add_argument_group("many tasks (docs/scale.md)")
    group.add_argument(
        "--batch",
        metavar="TASKS.jsonl",
        help='run every task of a JSONL file ({"id": ..., "task": ...} per line) and append each result to '
        "--out; rerun to resume; not stored in the history",
    )
    group.add_argument("--out", metavar="RESULTS.jsonl", help="--batch results (default: TASKS.results.jsonl)")
    group.add_argument("--no-progress", action="store_true", help="--batch: no progress display on stderr")
    add_ray_arguments(parser)


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        max_steps=args.max_steps,
        max_tokens=args.max_tokens,
        max_seconds=args.timeout,
        cell_timeout=args.cell_timeout,
    )


def strategy_from(args: argparse.Namespace) -> Strategy:
    return dataclasses.replace(Strategy.baseline() if args.baseline else Strategy(), votes=args.votes)


def load_model(args: argparse.Namespace) -> Any:
    """The model named by ``--model``/``--base-url`` (the embedded default when neither is given)."""
    from codeloop.llm import get_model

    return get_model(args.model, base_url=args.base_url)


def open_history(args: argparse.Namespace, warn: Callable[[str], None]) -> Any:
    """The history store, or None (with a warning) when it is turned off or cannot be opened."""
    if args.no_history:
        return None
    from codeloop.store import History

    try:
        return History()
    except HistoryError as e:
        warn(f"history is off for this run: {e}")
        return None


def sandbox_factory(timeout: float) -> Callable[[], Any]:
    """Makes the agent's sandbox; the first one prints the missing-isolation-layers line (as exec does)."""
    warned: list[bool] = []

    def make() -> Any:
        from codeloop.sandbox import Sandbox

        sandbox = Sandbox(timeout=timeout)
        if sandbox.isolation_warning is not None and not warned:
            warned.append(True)
            print(sandbox.isolation_warning, file=sys.stderr)
        return sandbox

    return make


def warn(message: str) -> None:
    print(f"codeloop: warning: {message}", file=sys.stderr)


def read_task(args: argparse.Namespace) -> str | None:
    if args.task not in (None, "-"):
        return str(args.task)
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.read()


def run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        from codeloop.cli.batch_cmd import run_batch_command

        return run_batch_command(args)
    if args.ray is not None:
        print("codeloop run: --ray runs a --batch of tasks on a cluster; give --batch TASKS.jsonl", file=sys.stderr)
        return 2
    task = read_task(args)
    if task is None or not task.strip():
        print('codeloop run: give a task, e.g. codeloop run "What is 2**100?"', file=sys.stderr)
        return 2
    limits, strategy = limits_from(args), strategy_from(args)
    model = load_model(args)
    printer = None
    if not args.json:
        printer = ConsolePrinter(sys.stdout)
    elif args.verbose:
        printer = ConsolePrinter(sys.stderr)
    history = open_history(args, warn)
    recorder = None
    if history is not None:
        from codeloop.store import Recorder

        try:
            conversation = history.new_conversation("run", task, model.name)
        except HistoryError as e:
            warn(f"history is off for this run: {e}")
        else:
            recorder = Recorder(
                history, conversation, on_error=lambda e: warn(f"history stopped recording: {e}")
            )
            recorder.begin(task.strip())
    try:
        with Agent(
            model,
            limits=limits,
            strategy=strategy,
            on_event=fan_out([recorder, printer]),
            sandbox_factory=sandbox_factory(limits.cell_timeout),
        ) as agent:
            result = agent.run(task)
    finally:
        if history is not None:
            history.close()
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    elif result.id is not None:
        print(f"(stored as run {result.id}: codeloop history show {result.id})", file=sys.stderr)
    if result.status is TaskStatus.INTERRUPTED:
        return 130
    return 0 if result.ok else 1
