"""Fixtures shared by the CLI tests: the HumanEval problems (the assembled default model is in tests/conftest.py).

Each test file isolates the user directory itself (its own ``codeloop_home`` fixture).
"""

from __future__ import annotations

import pytest

from codeloop.evals.problems import Problem, load_humaneval


@pytest.fixture(scope="session")
def problems() -> dict[str, Problem]:
    return load_humaneval()
