"""Fixtures for the model layer: an isolated user dir, the bundled GGUFs, a real llama.cpp server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_servers import LlamaServer


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py), created up front: the tests
    write config.toml into it."""
    codeloop_home.mkdir()
    return codeloop_home


@pytest.fixture(scope="session")
def llama_server(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One real llama.cpp server with SmolLM2 for the whole session."""
    server = LlamaServer(smollm_path, tmp_path_factory.mktemp("server") / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_llama_server(smollm_path: Path, tmp_path: Path) -> Iterator[LlamaServer]:
    """A server this test may kill."""
    server = LlamaServer(smollm_path, tmp_path / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
