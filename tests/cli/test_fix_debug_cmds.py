"""``codeloop fix`` and ``codeloop debug`` from the command line: exit codes, --json, clear errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The folder that is fixed: one of its own, since tmp_path also holds the user dir."""
    path = tmp_path / "project"
    path.mkdir()
    return path


def codeloop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codeloop", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fix_json_when_the_tests_pass(project: Path) -> None:
    (project / "calc.py").write_text(CALC.replace("a - b", "a + b"))
    (project / "test_calc.py").write_text(TESTS)
    done = codeloop("fix", str(project), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["fixed"] is True and out["diff"] == "" and out["rounds"] == 0
    assert out["tests_before"]["passed"] == 1 and out["tests_after"]["ok"] is True
    assert set(out["timings"]) >= {"total_s", "model_s", "tests_s"}


def test_fix_errors_exit_2_with_a_message(project: Path) -> None:
    done = codeloop("fix", str(project / "missing.py"))
    assert done.returncode == 2 and "codeloop fix: error: no such file" in done.stderr and "Traceback" not in done.stderr
    (project / "calc.py").write_text(CALC)
    (project / "test_calc.py").write_text("def test_x(:\n")
    done = codeloop("fix", str(project), "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["kind"] == "input"
    assert "cannot be collected" in json.loads(done.stdout)["error"]


def test_fix_with_a_dead_model_server(project: Path) -> None:
    (project / "calc.py").write_text(CALC)
    (project / "test_calc.py").write_text(TESTS)
    done = codeloop("fix", str(project), "--base-url", f"http://127.0.0.1:{closed_port()}/v1")
    assert done.returncode == 1
    assert "codeloop fix: error: no server at" in done.stderr and "Traceback" not in done.stderr
    assert (project / "calc.py").read_text() == CALC


def test_debug_json_and_arguments_after_the_file(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("import sys\n\ndef f(n):\n    return 10 // n\n\nprint(sys.argv[1:])\nf(int(sys.argv[1]))\n")
    done = codeloop("debug", str(script), "--no-model", "--json", "--", "0", "--flag")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "exception" and out["run"]["exception_type"] == "ZeroDivisionError"
    assert out["run"]["frames"][-1]["locals"] == {"n": "0"}
    assert "['0', '--flag']" in out["run"]["output"]
    view = codeloop("debug", "--no-model", str(script), "--", "5")
    assert view.returncode == 0 and "ran" in view.stdout
    bad = codeloop("debug", str(script), "--bogus")
    assert bad.returncode == 2 and "arguments for the script go after --" in bad.stderr
    missing = codeloop("debug", str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
