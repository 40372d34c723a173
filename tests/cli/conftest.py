"""Fixtures shared by the CLI tests: the HumanEval problems (the user dir and the assembled
default model are in tests/conftest.py).

Each test file chooses how it isolates the user directory: most switch on ``codeloop_home``
for every test with an autouse fixture of that name.
"""

from __future__ import annotations

import pytest

from codeloop.evals.problems import Problem, load_humaneval


@pytest.fixture(scope="session")
def problems() -> dict[str, Problem]:
    return load_humaneval()
