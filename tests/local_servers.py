"""Servers the tests start on 127.0.0.1, one way: a free port, an HTTP server in a thread, a
scripted OpenAI-compatible model server, a server process waited for until it answers,
llama-cpp-python's server.

Importable from every test directory (``pythonpath = ["tests"]`` in pyproject.toml).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (nothing listens there now)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class HttpServerThread:
    """``ThreadingHTTPServer`` with ``handler`` on 127.0.0.1 (a free port), served by a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], poll_interval: float = 0.5) -> None:
        self.httpd = ThreadingHTTPServer((HOST, 0), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(30)


class ScriptedOpenAIServer:
    """An OpenAI-compatible server (real HTTP and SSE) answering with the scripted replies in order.

    ``/chat/completions`` and ``/completions`` (raw prompts), streamed ``chunk`` characters an
    event or whole; ``default`` once the script runs out. Records each request's body and path.
    """

    def __init__(self, *, default: str = "Done.", chunk: int = 5) -> None:
        self.replies: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.paths.append(self.path)
                chat = self.path.endswith("/chat/completions")
                text = outer.replies.pop(0) if outer.replies else default
                if not body.get("stream"):
                    self._whole(text, chat)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for i in range(0, len(text), chunk):
                        piece = text[i : i + chunk]
                        self._event({"delta": {"content": piece}} if chat else {"text": piece}, chat)
                    self._event({"delta": {}, "finish_reason": "stop"} if chat else {"text": "", "finish_reason": "stop"}, chat)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (a closing fence, a whole line): that is the point

            def _whole(self, text: str, chat: bool) -> None:
                choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
                data = json.dumps({
                    "id": "x", "object": "chat.completion" if chat else "text_completion", "created": 0,
                    "model": "scripted", "choices": [{"index": 0, **choice, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _event(self, choice: dict[str, Any], chat: bool) -> None:
                kind = "chat.completion.chunk" if chat else "text_completion"
                event = {"id": "x", "object": kind, "created": 0, "model": "scripted",
                         "choices": [{"index": 0, "finish_reason": None, **choice}]}  # fmt: skip
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = HttpServerThread(Handler)
        self.base_url = f"{self.server.url}/v1"

    def close(self) -> None:
        self.server.close()


def wait_until_answering(url: str, proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float,
                         log: Path | None = None) -> None:  # fmt: skip
    """Poll ``url`` until the server process answers it with any HTTP status; raise RuntimeError if
    the process exits first or ``timeout`` seconds pass (with the end of ``log`` when given)."""

    def tail() -> str:
        return log.read_text(errors="replace")[-2000:] if log is not None else ""

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server at {url} exited early ({proc.returncode}): {tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, if not with a 2xx
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {url} did not answer within {timeout:g} s: {tail()}")
        time.sleep(0.2)


class LlamaServer:
    """``python -m codeloop.llm.llama_server`` (llama-cpp-python's server) on 127.0.0.1."""

    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}/v1"
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codeloop.llm.llama_server", "--model", str(model),
             "--host", HOST, "--port", str(self.port), "--n_ctx", "2048", "--n_threads", "2"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.log = log

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_until_answering(f"{self.base_url}/models", self.proc, timeout, self.log)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
