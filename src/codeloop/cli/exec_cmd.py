"""``codeloop exec FILE | -c CODE``: run code in the sandbox, no model, and print like ``python``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.sandbox import RunResult, Sandbox
from codeloop.text.terminal import printable

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Run Python code in a fresh sandbox session, with no model. Output goes to stdout, errors and "
    "the traceback to stderr, as with python; exit 0 on success, 1 when the code failed. The code "
    "runs in the session's own empty directory, not the current one."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="a Python file to run, or - to read the code from stdin")
    parser.add_argument("-c", dest="code", metavar="CODE", help="the code to run, as a string")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="time limit in seconds (default 30)")
    parser.add_argument(
        "--save-figures", type=Path, metavar="DIR", help="save matplotlib figures as PNG files in DIR"
    )


def _read_code(args: argparse.Namespace) -> tuple[str, str] | None:
    """(code, label), or None after printing a usage error."""
    if (args.code is None) == (args.file is None):
        print("codeloop exec: give exactly one of FILE, - or -c CODE", file=sys.stderr)
        return None
    if args.code is not None:
        return args.code, "-c"
    if args.file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(args.file).read_text(encoding="utf-8"), args.file
    except (OSError, UnicodeDecodeError) as e:
        print(f"codeloop exec: cannot read {args.file}: {e}", file=sys.stderr)
        return None


def _save_figures(result: RunResult, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, png in enumerate(result.figures, start=1):
        path = directory / f"figure-{result.cell}-{number}.png"
        path.write_bytes(png)
        paths.append(str(path))
    return paths


def run(args: argparse.Namespace) -> int:
    source = _read_code(args)
    if source is None:
        return 2
    if not args.timeout > 0:
        print("codeloop exec: --timeout must be positive", file=sys.stderr)
        return 2
    code, _label = source
    with Sandbox(timeout=args.timeout, prestart=False) as sandbox:
        if sandbox.isolation_warning is not None:  # jail: never degrade silently
            print(sandbox.isolation_warning, file=sys.stderr)
        result = sandbox.run(code)
        if args.verbose:
            active = ", ".join(name for name, on in sandbox.isolation.items() if on)
            print(f"codeloop: isolation layers active: {active}", file=sys.stderr)
    figure_paths = _save_figures(result, args.save_figures) if args.save_figures else None
    if args.json:
        print(json.dumps(result.to_dict(figure_paths=figure_paths), indent=2))
    else:
        # the sandbox chose these bytes: no terminal escapes reach the user's terminal (--json keeps them)
        sys.stdout.write(printable(result.stdout))
        sys.stdout.flush()
        sys.stderr.write(printable(result.stderr))
        if result.error is not None:
            sys.stderr.write(printable(result.error.traceback))
        if result.figures and figure_paths is None:
            print(
                f"codeloop: {len(result.figures)} figure(s) produced; use --save-figures DIR or --json",
                file=sys.stderr,
            )
        if args.verbose:
            print(f"codeloop: status {result.status}, {result.duration:.3f} s", file=sys.stderr)
    return 0 if result.ok else 1
