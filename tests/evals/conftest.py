"""Fixtures of the harness tests: an isolated user directory, the problems, and a sandbox factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codeloop.evals.problems import Problem, load_humaneval


@pytest.fixture(autouse=True)
def _codeloop_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("codeloop-home")
    monkeypatch.setenv("CODELOOP_HOME", str(home))
    yield home


@pytest.fixture(scope="session")
def problems() -> dict[str, Problem]:
    return load_humaneval()
