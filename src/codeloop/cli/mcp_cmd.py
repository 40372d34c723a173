"""``codeloop mcp``: a Model Context Protocol server (stdio by default, streamable HTTP with --http)."""

from __future__ import annotations

import argparse
import os
import sys

from codeloop.cli.argtypes import positive_float

DESCRIPTION = (
    "Serve codeloop's tools to an MCP client (Claude Desktop, an IDE, another agent): run_python "
    "(stateful sandbox sessions, figures as images), reset_session and solve_task (the agent loop). "
    "Speaks MCP over stdin/stdout by default; --http serves streamable HTTP on 127.0.0.1 instead "
    "(another address needs --token). Registration: docs/server.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument(
        "--host", default="127.0.0.1", help="with --http: address to bind (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8766, help="with --http: port (default 8766)")
    parser.add_argument(
        "--token",
        default=None,
        help="with --http: the bearer token clients must send (default: CODELOOP_TOKEN)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="seconds per run_python cell by default (default 30)",
    )
    parser.add_argument(
        "--no-history", action="store_true", help="do not store solve_task runs in the history"
    )


def run(args: argparse.Namespace) -> int:
    try:
        from codeloop.server.mcp_server import build_mcp_server
    except ImportError as e:
        print(f"codeloop mcp: needs the server extra: pip install 'codeloop[server]' ({e})", file=sys.stderr)
        return 2
    server = build_mcp_server(
        model=args.model, base_url=args.base_url, timeout=args.timeout, history=not args.no_history
    )
    if not args.http:
        server.run()  # stdio: stdout belongs to the protocol, so nothing else is printed there
        return 0
    from codeloop.server.auth import is_loopback
    from codeloop.server.mcp_http import serve_http

    token = args.token or os.environ.get("CODELOOP_TOKEN") or None
    if not is_loopback(args.host) and not token:
        print(
            f"codeloop mcp: refusing to bind {args.host} without a token: give --token TOKEN "
            "(or set CODELOOP_TOKEN), or bind 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    if token is not None and len(token) < 8:
        print("codeloop mcp: a token must be at least 8 characters long", file=sys.stderr)
        return 2
    return serve_http(server, args.host, args.port, token)
