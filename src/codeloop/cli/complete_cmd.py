"""``codeloop complete FILE:LINE:COL``: fill in code at a cursor; ``--serve`` for editors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from codeloop.cli.argtypes import positive_int
from codeloop.errors import CodeloopError

DESCRIPTION = (
    "Complete code at a cursor with fill-in-the-middle: FILE:LINE:COL (1-based; '- LINE:COL' reads the "
    "file from stdin, --path names it). Prints the text to insert at the cursor (one line unless "
    "--lines N); the file is never changed. --serve keeps the model loaded and answers one JSON request "
    "per stdin line (see docs/workflows.md)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", nargs="?", metavar="FILE:LINE:COL", help="where to complete ('-' reads stdin)"
    )
    parser.add_argument("cursor", nargs="?", metavar="LINE:COL", help="the cursor when FILE is '-' (stdin)")
    parser.add_argument("--lines", type=positive_int, default=1, help="most lines to complete (default 1)")
    parser.add_argument("--max-tokens", type=positive_int, default=None, help="most tokens to generate")
    parser.add_argument("--path", default=None, help="the file name to report when reading stdin")
    parser.add_argument("--serve", action="store_true", help="answer JSON-line requests on stdin until EOF")


def parse_target(target: str) -> tuple[str, int, int]:
    """``FILE:LINE:COL`` split from the right (a path may hold colons)."""
    parts = target.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise argparse.ArgumentTypeError(f"expected FILE:LINE:COL, got {target!r}")
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(f"LINE and COL must be numbers in {target!r}") from None


def _load_model(args: argparse.Namespace) -> Any:
    from codeloop.llm import get_model

    return get_model(args.model, base_url=args.base_url)


def run(args: argparse.Namespace) -> int:
    if args.serve:
        if args.target:
            print(
                "codeloop complete: --serve takes no FILE:LINE:COL (requests come on stdin)", file=sys.stderr
            )
            return 2
        return serve(_load_model(args), sys.stdin, sys.stdout, default_lines=args.lines)
    if not args.target:
        print("codeloop complete: give FILE:LINE:COL (or --serve)", file=sys.stderr)
        return 2
    target = args.target
    if args.cursor is not None:
        if target != "-":
            print(
                "codeloop complete: LINE:COL goes after '-' only (else write FILE:LINE:COL)", file=sys.stderr
            )
            return 2
        target = f"-:{args.cursor}"
    elif target == "-":
        print("codeloop complete: after '-' give the cursor as LINE:COL", file=sys.stderr)
        return 2
    try:
        path, line, col = parse_target(target)
    except argparse.ArgumentTypeError as e:
        print(f"codeloop complete: {e}", file=sys.stderr)
        return 2
    from codeloop.workflows.complete import complete, decode_source, read_source

    if path == "-":
        source = decode_source(sys.stdin.buffer.read(), args.path or "<stdin>")
        shown = args.path or "-"
    else:
        source = read_source(path)
        shown = path
    # The cursor is checked before the model loads: a typo costs nothing.
    from codeloop.workflows.complete import split_at_cursor

    split_at_cursor(source, line, col)
    model = _load_model(args)
    result = complete(model, source, line, col, lines=args.lines, path=shown, max_tokens=args.max_tokens)
    if args.json:
        json.dump(result.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.completion + "\n")
    return 0


def serve(model: Any, inp: TextIO, out: TextIO, *, default_lines: int = 1) -> int:
    """Answer one JSON request per input line with one JSON line, until EOF.

    Request: ``{"line", "col"}`` with ``"source"`` (the text) or ``"path"`` (a file to read), and
    optionally ``"lines"``, ``"max_tokens"``, ``"id"`` (echoed). Reply: the completion's fields, or
    ``{"error": TEXT}``. The first line out is ``{"ready": true, "model": NAME}``.
    """
    from codeloop.workflows.complete import complete, read_source

    _send(out, {"ready": True, "model": getattr(model, "name", "?")})
    for raw in inp:
        if not raw.strip():
            continue
        started = time.perf_counter()
        reply: dict[str, Any] = {}
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            if "id" in request:
                reply["id"] = request["id"]
            line, col = request.get("line"), request.get("col")
            if not isinstance(line, int) or not isinstance(col, int):
                raise ValueError('"line" and "col" must be integers')
            source = request.get("source")
            path = request.get("path")
            if source is None:
                if not isinstance(path, str):
                    raise ValueError('give "source" (the text) or "path" (a file)')
                source = read_source(path)
            if not isinstance(source, str):
                raise ValueError('"source" must be a string')
            lines = request.get("lines", default_lines)
            max_tokens = request.get("max_tokens")
            if not isinstance(lines, int) or (max_tokens is not None and not isinstance(max_tokens, int)):
                raise ValueError('"lines" and "max_tokens" must be integers')
            result = complete(model, source, line, col, lines=lines, path=path, max_tokens=max_tokens)
            reply.update(result.to_dict())
        except (ValueError, CodeloopError) as e:  # json.JSONDecodeError is a ValueError
            reply["error"] = str(e)
            reply["total_seconds"] = round(time.perf_counter() - started, 4)
        _send(out, reply)
    return 0


def _send(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()
