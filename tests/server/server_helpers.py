"""Helpers of the server tests: a real uvicorn server in a thread (the scripted model: local_servers)."""

from __future__ import annotations

import threading
import time

import uvicorn

from codeloop.server.app import ServerSettings, create_app


class LiveServer:
    """``create_app(settings)`` served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, settings: ServerSettings) -> None:
        self.app = create_app(settings)
        self.state = self.app.state.codeloop
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=3
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive(), "the server did not shut down"
