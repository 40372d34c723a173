"""``codeloop serve``: the HTTP API and the web page (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import os
import sys

from codeloop.cli.argtypes import positive_float, positive_int

DESCRIPTION = (
    "Serve the HTTP API (sandbox sessions, agent tasks streamed as Server-Sent Events, the history) "
    "and the web page at http://HOST:PORT/. Binds 127.0.0.1:8765 by default; any other address "
    "needs a token (--token or CODELOOP_TOKEN), sent by clients as 'Authorization: Bearer TOKEN'. "
    "Routes, limits and auth: docs/server.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--token",
        action="append",
        default=None,
        metavar="TOKEN",
        help="a client token (repeat for several clients, each sees only its own sessions and history); "
        "default: CODELOOP_TOKEN (comma-separated)",
    )
    parser.add_argument(
        "--max-sessions", type=positive_int, default=64, help="live sessions at most (default 64)"
    )
    parser.add_argument(
        "--max-sessions-per-token",
        type=positive_int,
        default=None,
        help="live sessions one token may hold (default: no cap below --max-sessions)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=600.0,
        help="close sessions idle this long, seconds (default 600)",
    )
    parser.add_argument(
        "--max-body", type=positive_int, default=1 << 20, help="largest request body in bytes (default 1 MiB)"
    )
    parser.add_argument(
        "--max-tasks", type=positive_int, default=4, help="agent tasks running at once (default 4)"
    )
    parser.add_argument(
        "--allow-network", action="store_true", help="let clients ask for sessions with network access"
    )
    parser.add_argument(
        "--allow-model",
        action="append",
        default=[],
        metavar="NAME",
        help="another model clients may name (repeat)",
    )
    parser.add_argument("--no-history", action="store_true", help="do not store tasks in the history")


def _tokens(args: argparse.Namespace) -> list[str]:
    if args.token:
        return [t for t in args.token if t.strip()]
    return [t for t in os.environ.get("CODELOOP_TOKEN", "").split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from codeloop.server.app import ServerSettings, create_app
        from codeloop.server.auth import bind_listener, is_loopback
    except ImportError as e:
        print(
            f"codeloop serve: needs the server extra: pip install 'codeloop[server]' ({e})", file=sys.stderr
        )
        return 2
    tokens = _tokens(args)
    if not is_loopback(args.host) and not tokens:
        print(
            f"codeloop serve: refusing to bind {args.host} without a token: anyone who can reach it could "
            "run code here. Give --token TOKEN (or set CODELOOP_TOKEN), or bind 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    if any(len(t.strip()) < 8 for t in tokens):
        print("codeloop serve: a token must be at least 8 characters long", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"codeloop serve: --port must be 0-65535, not {args.port}", file=sys.stderr)
        return 2
    settings = ServerSettings(
        tokens=tokens,
        max_sessions=args.max_sessions,
        max_sessions_per_token=args.max_sessions_per_token,
        idle_timeout=args.idle_timeout,
        max_body=args.max_body,
        max_tasks=args.max_tasks,
        allow_network=args.allow_network,
        model=args.model,
        base_url=args.base_url,
        allowed_models=args.allow_model,
        history=not args.no_history,
    )
    try:
        sock = bind_listener(args.host, args.port)
    except OSError as e:
        print(f"codeloop serve: cannot bind {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level="info" if args.verbose else "warning",
        timeout_graceful_shutdown=3,  # open task streams are cut after this; then every sandbox closes
    )
    server = uvicorn.Server(config)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    auth = "token required" if tokens else "no token (loopback only)"
    print(f"codeloop serve: http://{shown}:{port}/ ({auth}); Ctrl-C stops", file=sys.stderr, flush=True)
    with sock:
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the signal after its graceful shutdown
            pass
    print("codeloop serve: stopped; every sandbox session is closed", file=sys.stderr)
    return 0
