"""``codeloop exec``: prints like python, exit codes, --json, files and stdin (real subprocesses)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


def codeloop(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_code_string_prints_like_python() -> None:
    done = codeloop("exec", "-c", "import sys\nprint('out')\nprint('err', file=sys.stderr)\n40 + 2")
    assert done.returncode == 0
    assert done.stdout == "out\n"  # the value of the last line is not printed, as with python -c
    assert done.stderr == "err\n"


def test_a_failing_file_exits_1_with_the_traceback_on_stderr(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("print('before')\n\ndef f():\n    raise ValueError('nope')\n\nf()\n")
    done = codeloop("exec", str(script))
    assert done.returncode == 1
    assert done.stdout == "before\n"
    assert "ValueError: nope" in done.stderr
    assert "raise ValueError('nope')" in done.stderr


def test_code_from_stdin() -> None:
    done = codeloop("exec", "-", stdin="print(sum(range(10)))\n")
    assert done.returncode == 0
    assert done.stdout == "45\n"


def test_json_prints_the_whole_result() -> None:
    done = codeloop(
        "exec",
        "--json",
        "-c",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nopen('f.txt', 'w').write('x')\nprint('hi')\n6 * 7",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "ok"
    assert result["stdout"] == "hi\n"
    assert result["value"] == "42"
    assert result["files"] == ["f.txt"]
    assert result["error"] is None
    assert result["duration"] > 0
    assert base64.b64decode(result["figures"][0]).startswith(b"\x89PNG\r\n\x1a\n")


def test_json_error_and_timeout() -> None:
    done = codeloop("exec", "--json", "--timeout", "0.5", "-c", "while True: pass")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "timeout"
    assert "time limit" in result["stderr"]


def test_figures_can_be_saved(tmp_path: Path) -> None:
    done = codeloop(
        "exec", "--save-figures", str(tmp_path), "-c", "import matplotlib.pyplot as plt\nplt.plot([1, 2])"
    )
    assert done.returncode == 0, done.stderr
    [png] = tmp_path.glob("*.png")
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args",
    [("exec",), ("exec", "-c", "1", "file.py"), ("exec", "/nonexistent/file.py"), ("exec", "--timeout", "0", "-c", "1")],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    done = codeloop(*args)
    assert done.returncode == 2
    assert "codeloop exec:" in done.stderr
