"""Server tests: a real uvicorn server on 127.0.0.1 in a thread, a scripted OpenAI-compatible model
server (real HTTP, real streaming) for exact checks, and an isolated user directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import LiveServer

from codeloop.server.app import ServerSettings
from local_servers import ScriptedOpenAIServer


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def scripted() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer()
    yield server
    server.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """``serve(**settings)`` starts a real server; every one is stopped (and checked empty) after the test."""
    started: list[LiveServer] = []

    def start(**kwargs: Any) -> LiveServer:
        server = LiveServer(ServerSettings(**kwargs))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        assert len(server.state.sessions) == 0, "sessions left open after shutdown"
