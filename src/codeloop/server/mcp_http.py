"""``codeloop mcp --http``: the MCP server's streamable HTTP app behind the same bearer-token check."""

from __future__ import annotations

import sys
from typing import Any

from codeloop.server.auth import TokenAuth, bind_listener

__all__ = ["serve_http"]


class _RequireToken:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer TOKEN`` (401 otherwise)."""

    def __init__(self, app: Any, auth: TokenAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            header = next(
                (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), None
            )
            if self.auth.owner(header) is None:
                body = b'{"detail": "a valid token is required: send \'Authorization: Bearer TOKEN\'"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def serve_http(server: Any, host: str, port: int, token: str | None) -> int:
    """Serve ``server`` (an MCPServer) over streamable HTTP at ``http://host:port/mcp`` until Ctrl-C."""
    import uvicorn

    try:
        sock = bind_listener(host, port)
    except OSError as e:
        print(f"codeloop mcp: cannot bind {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 2
    app: Any = server.streamable_http_app()
    if token:
        app = _RequireToken(app, TokenAuth([token]))
    shown = f"[{host}]" if ":" in host else host
    print(
        f"codeloop mcp: http://{shown}:{sock.getsockname()[1]}/mcp (streamable HTTP); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    with sock:
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:
            pass
    return 0
