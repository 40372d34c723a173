"""``codeloop fix PATH... [--test CMD]``: repair code until its tests pass (on a copy; ``--write`` to apply)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from codeloop.cli.workflow_errors import report_error
from codeloop.errors import CodeloopError

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Run the tests on a copy of the project in the sandbox, find the function at fault from pytest's "
    "reports and a trace of the failing test, let the model rewrite it, rerun, and repeat. Prints the "
    "final unified diff. Your files are not changed unless you pass --write (then atomically, keeping a "
    "FILE.orig backup, and only when the tests pass). Test files are never edited. Exit 0 only when the "
    "tests pass afterwards, 1 when they still fail, 2 for a usage error (missing file, syntax error, "
    "tests that cannot be collected)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="source files or directories to repair")
    parser.add_argument("--test", default="python -m pytest -q", metavar="CMD",
                        help="the test command, run in the project root (default: python -m pytest -q; "
                             "'python' is the sandbox's interpreter)")
    parser.add_argument("--rounds", type=int, default=4, metavar="N", help="repair rounds at most (default 4)")
    parser.add_argument("--samples", type=int, default=3, metavar="N",
                        help="candidate patches per round when the first does not pass (default 3)")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="project root to copy (default: the directory given, or the nearest with "
                             "pyproject.toml/setup.py/.git above the files)")
    parser.add_argument("--test-timeout", type=float, default=5.0, metavar="S",
                        help="seconds one test may run before it counts as hanging (default 5)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="seconds one run of the test command may take (default 120)")
    parser.add_argument("--write", action="store_true", help="apply the fix to your files (backup kept)")


def _progress(verbose: bool) -> Any:
    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "tests" and data.get("status") == "done":
            c = data["counts"]
            print(f"codeloop fix: tests before: {c['passed']} passed, {c['failed']} failed, {c['errors']} errors",
                  file=sys.stderr)
        elif kind == "tests":
            print("codeloop fix: running the tests on a copy in the sandbox...", file=sys.stderr)
        elif kind == "model":
            print("codeloop fix: loading the model...", file=sys.stderr)
        elif kind == "round_start":
            print(f"codeloop fix: round {data['round']}: rewriting {data['function']} in {data['file']}", file=sys.stderr)
        elif kind == "candidate" and verbose:
            c = data["counts"]
            print(f"codeloop fix:   candidate {data['candidate']}: {c['passed']} passed, {c['failed'] + c['errors']} failing",
                  file=sys.stderr)
        elif kind == "round":
            c = data["tests"]
            verdict = "kept" if data["accepted"] else "no candidate did better"
            print(f"codeloop fix: round {data['round']}: {data['candidates']} candidate(s), {verdict}; "
                  f"{c.get('passed', 0)} passed, {c.get('failed', 0) + c.get('errors', 0)} failing", file=sys.stderr)
            if verbose:
                for why in data["rejected"]:
                    print(f"codeloop fix:   rejected {why}", file=sys.stderr)
    return on_event


def run(args: argparse.Namespace) -> int:
    from codeloop.workflows.fix import fix

    def model_factory() -> Any:
        from codeloop.llm import get_model

        return get_model(args.model, base_url=args.base_url)

    try:
        result = fix(args.paths, test=args.test, model=model_factory, rounds=args.rounds, samples=args.samples,
                     write=args.write, root=args.root, test_timeout=args.test_timeout, timeout=args.timeout,
                     on_event=None if args.json else _progress(args.verbose))
    except CodeloopError as e:
        return report_error("fix", e, as_json=args.json)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        if result.diff:
            sys.stdout.write(result.diff)
        after = result.tests_after
        print(f"codeloop fix: {result.message} ({after['passed']} passed, {after['failed'] + after['errors']} failing; "
              f"{result.timings.get('total_s', 0):.1f} s)", file=sys.stderr)
        for w in result.written:
            print(f"codeloop fix: wrote {w['path']} (backup: {w['backup']})", file=sys.stderr)
        if result.diff and not args.write and result.fixed:
            print("codeloop fix: your files are unchanged; rerun with --write to apply this diff", file=sys.stderr)
    return 0 if result.fixed else 1
