"""Fixtures for self-training: an isolated user dir (the bundled models' fixtures are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py), created up front, as an
    existing user's would be."""
    codeloop_home.mkdir()
    return codeloop_home
