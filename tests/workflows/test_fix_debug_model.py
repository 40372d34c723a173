"""fix and debug end to end with the real embedded model (llama.cpp) on tiny buggy code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixdebug_helpers import make_project, state

from codeloop.workflows.debug import debug
from codeloop.workflows.fix import fix

pytestmark = [pytest.mark.model, pytest.mark.slow]



@pytest.fixture(scope="module")
def real_model() -> Any:
    from codeloop.llm import get_model

    model = get_model()
    yield model
    model.close()

COUNTDOWN = 'def countdown(n):\n    """[n, n-1, ..., 1]."""\n    out = []\n    while n > 0:\n        out.append(n)\n    return out\n'
COUNTDOWN_TESTS = ("from countdown import countdown\n\n\ndef test_three():\n    assert countdown(3) == [3, 2, 1]\n\n\n"
                   "def test_zero():\n    assert countdown(0) == []\n")


def test_fix_repairs_a_hanging_loop_with_the_embedded_model(tmp_path: Path, real_model: Any) -> None:
    project = make_project(tmp_path / "p", {"countdown.py": COUNTDOWN, "tests/test_countdown.py": COUNTDOWN_TESTS})
    before = state(project)
    result = fix([project / "countdown.py"], model=real_model, test_timeout=2.0)
    assert result.tests_before["passed"] == 1 and result.tests_before["failed"] == 1
    assert result.fixed, result.to_dict()
    assert result.tests_after["passed"] == 2
    assert result.diff.startswith("--- a/countdown.py\n+++ b/countdown.py\n")
    assert state(project) == before


def test_debug_explains_and_fixes_a_crash_with_the_embedded_model(tmp_path: Path, real_model: Any) -> None:
    make_project(tmp_path, {"avg.py": "def mean(values):\n    return sum(values) / len(values)\n\n\n"
                                      "print(mean([1, 2]))\nprint(mean([]))\n"})
    result = debug(tmp_path / "avg.py", model=real_model, fix=True)
    assert result.run.exception_type == "ZeroDivisionError"
    assert result.explanation.strip()
    assert result.fixed, result.to_dict()
    assert "def mean" in result.diff
