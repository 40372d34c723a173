"""The patch helpers fix and debug rely on: function replacement, diffs, and the guard against cheating."""

from __future__ import annotations

import subprocess
from pathlib import Path

from codeloop.workflows.patch import (
    count_asserts,
    find_function,
    replace_function,
    review_change,
    unified_diff,
)
from codeloop.workflows.snapshot import is_test_path

MODULE = '''"""Doc."""
import math


class Box:
    def area(self, w, h):
        return w + h

    def name(self):
        return "box"


def top(x):
    return x
'''


def test_replace_method_keeps_indentation_and_adds_imports() -> None:
    reply = "import functools\n\ndef area(self, w, h):\n    return w * h\n"
    new = replace_function(MODULE, "Box.area", reply)
    assert new is not None
    assert "        return w * h" in new and "return w + h" not in new
    assert new.splitlines()[2] == "import functools"  # after the docstring and imports
    assert "def name(self)" in new and "def top(x)" in new  # the rest is kept


def test_replace_finds_the_function_in_a_whole_module_reply() -> None:
    reply = "def top(x):\n    return x + 1\n\ndef other():\n    pass\n"
    new = replace_function(MODULE, "top", reply)
    assert new is not None and "return x + 1" in new and "def other" not in new


def test_replace_rejects_unusable_replies() -> None:
    assert replace_function(MODULE, "top", "def top(x:\n    return") is None  # does not parse
    assert replace_function(MODULE, "top", "def elsewhere():\n    pass\n") is None  # wrong function
    assert replace_function(MODULE, "missing", "def missing():\n    pass\n") is None
    assert find_function(MODULE, "area") is not None and find_function(MODULE, "area").name == "Box.area"


def test_unified_diff_applies_with_patch(tmp_path: Path) -> None:
    new = replace_function(MODULE, "top", "def top(x):\n    return 2 * x\n")
    assert new is not None
    diff = unified_diff({"pkg/m.py": MODULE}, {"pkg/m.py": new})
    assert diff.startswith("--- a/pkg/m.py\n+++ b/pkg/m.py\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/m.py").write_text(MODULE)
    subprocess.run(["git", "apply", "-"], input=diff.encode(), cwd=tmp_path, check=True)
    assert (tmp_path / "pkg/m.py").read_text() == new
    assert unified_diff({"a.py": "x\n"}, {"a.py": "x\n"}) == ""


def test_test_paths() -> None:
    for rel in ("test_a.py", "a_test.py", "tests/helpers.py", "pkg/tests/data.json", "conftest.py", "pytest.ini",
                "pyproject.toml"):
        assert is_test_path(rel), rel
    for rel in ("a.py", "src/pkg/testing_utils.py", "contest.py"):
        assert not is_test_path(rel), rel


TEST = "def test_a():\n    assert f(1) == 2\n    assert f(2) == 3\n\n\ndef test_b():\n    assert f(0) == 1\n"


def test_review_rejects_edits_to_tests_deleted_tests_and_weakened_asserts() -> None:
    old = {"m.py": "def f(x):\n    return x\n", "test_m.py": TEST}
    weakened = TEST.replace("    assert f(2) == 3\n", "")
    reasons = review_change(old, {**old, "test_m.py": weakened})
    assert any("removes assertions" in r for r in reasons) and any("edits the test file" in r for r in reasons)
    deleted = TEST.split("\n\n\ndef test_b")[0] + "\n"
    assert any("deletes tests in test_m.py: test_b" in r for r in review_change(old, {**old, "test_m.py": deleted}))
    assert any("deletes the test file" in r for r in review_change(old, {"m.py": old["m.py"]}))
    assert any("adds the test file" in r for r in review_change(old, {**old, "tests/test_new.py": "x = 1\n"}))
    assert any("conftest.py" in r for r in review_change(old, {**old, "conftest.py": "import pytest\n"}))
    assert count_asserts(TEST) == 3


def test_review_rejects_gaming_and_accepts_a_real_fix() -> None:
    old = {"m.py": "def f(x):\n    assert x >= 0\n    return x\n"}
    assert review_change(old, {"m.py": "def f(x):\n    assert x >= 0\n    return x + 1\n"}) == []
    gaming = {
        "def f(x):\n    assert x >= 0\n    import pytest\n    pytest.skip('no')\n": "uses pytest",
        "def f(x):\n    assert x >= 0\n    import sys\n    sys.exit(0)\n": "exits",
        "def f(x):\n    assert x >= 0\n    import sys\n    return sys._getframe(1).f_locals['expected']\n": "inspects its caller",
        "def f(x):\n    return x + 1\n": "removes assertions",
        "def f(x):\n    return (x\n": "no longer parses",
    }
    for text, why in gaming.items():
        reasons = review_change(old, {"m.py": text})
        assert any(why in r for r in reasons), (text, reasons)
    assert review_change(old, {}) == ["deletes m.py"]
