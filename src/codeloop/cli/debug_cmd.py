"""``codeloop debug FILE [-- ARGS]``: run a script under monitoring, explain the failure, propose a fix."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from codeloop.cli.workflow_errors import report_error
from codeloop.errors import CodeloopError

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Run a Python script on a copy of its directory in the sandbox under a line tracer: the lines it ran "
    "with the values they set, the failing frame and its callers with their variables, or where it spins "
    "when it hangs. The model explains the root cause from that evidence and proposes a fix as a diff. "
    "--fix applies it to the copy and reruns the script to show the failure is gone; --write then applies "
    "it to your file (atomically, keeping FILE.orig). Arguments after -- go to the script. Exit 0 when the "
    "script runs cleanly (as given, or with --fix after the fix), 1 when it fails, 2 for a usage error."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script_command", nargs=argparse.REMAINDER, metavar="FILE [-- ARGS]",
                        help="the Python script to run, then -- and its arguments")
    _add_options(parser)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds before the run counts as hanging (default 10)")
    parser.add_argument("--fix", action="store_true", help="apply the proposed fix to a copy and rerun to check it")
    parser.add_argument("--write", action="store_true", help="apply a fix that --fix showed to work (backup kept)")
    parser.add_argument("--no-model", action="store_true", help="only the monitored run and its evidence")
    parser.add_argument("--samples", type=int, default=3, metavar="N",
                        help="with --fix: candidate fixes to try until one runs cleanly (default 3)")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="directory to copy with the script (default: its project root or its own directory)")


def run(args: argparse.Namespace) -> int:
    from codeloop.workflows.debug import debug, format_debug

    if not args.script_command:
        print("codeloop debug: error: give the script to run: codeloop debug [OPTIONS] FILE [-- ARGS]", file=sys.stderr)
        return 2
    file, rest = args.script_command[0], args.script_command[1:]
    cut = rest.index("--") if "--" in rest else len(rest)
    own, script_args = rest[:cut], rest[cut + 1 :]
    if own:  # options written after FILE (arguments for the script go after --)
        late = argparse.ArgumentParser(prog="codeloop debug", add_help=False)
        _add_options(late)
        late.add_argument("--json", action="store_true")
        late.add_argument("--verbose", "-v", action="store_true")
        late.add_argument("--model", default=None)
        late.add_argument("--base-url", default=None)
        try:
            extra, unknown = late.parse_known_args(own)
        except SystemExit:
            return 2
        if unknown:
            print(f"codeloop debug: error: unrecognized arguments {' '.join(unknown)} "
                  "(arguments for the script go after --)", file=sys.stderr)
            return 2
        for key, value in vars(extra).items():
            if value != late.get_default(key):
                setattr(args, key, value)

    def model_factory() -> Any:
        from codeloop.llm import get_model

        return get_model(args.model, base_url=args.base_url)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if args.json:
            return
        if kind == "run" and data.get("status") == "running":
            print(f"codeloop debug: running {data['script']} under monitoring in the sandbox...", file=sys.stderr)
        elif kind == "model":
            print("codeloop debug: loading the model...", file=sys.stderr)
        elif kind == "rerun":
            print(f"codeloop debug: candidate fix {data['candidate']}: rerun {data['status']}", file=sys.stderr)

    try:
        result = debug(file, script_args, model=model_factory, use_model=not args.no_model,
                       fix=args.fix or args.write, write=args.write, timeout=args.timeout, samples=args.samples,
                       root=args.root, on_event=on_event)
    except CodeloopError as e:
        return report_error("debug", e, as_json=args.json)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_debug(result, color=sys.stdout.isatty()))
    if not result.run.failed:
        return 0
    return 0 if result.fixed else 1
