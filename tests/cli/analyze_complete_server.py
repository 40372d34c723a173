"""A scripted OpenAI-compatible server for the analyze/complete CLI tests: real HTTP and SSE,
both ``/chat/completions`` (the review) and ``/completions`` (raw FIM prompts)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedServer:
    """Streams the scripted replies in order; records each request body and path."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body))
                chat = self.path.endswith("/chat/completions")
                text = server.replies.pop(0) if server.replies else ""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for i in range(0, len(text), 4):
                        piece = text[i : i + 4]
                        self._event({"delta": {"content": piece}} if chat else {"text": piece}, chat)
                    self._event(
                        {"delta": {}, "finish_reason": "stop"}
                        if chat
                        else {"text": "", "finish_reason": "stop"},
                        chat,
                    )
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading once it had its line: that is the point

            def _event(self, choice: dict[str, Any], chat: bool) -> None:
                choice = {"index": 0, "finish_reason": None, **choice}
                kind = "chat.completion.chunk" if chat else "text_completion"
                chunk = {"id": "x", "object": kind, "created": 0, "model": "scripted", "choices": [choice]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def dead_url() -> str:
    """The URL of a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def codeloop(*args: str, stdin: str | None = None, timeout: float = 120, cwd: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip
