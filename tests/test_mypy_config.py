"""mypy's configuration: only the untyped third-party packages are let off, never codeloop itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mypy(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--follow-imports=skip",
         "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(probe)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip


def test_a_missing_codeloop_module_is_an_error(tmp_path: Path) -> None:
    done = _mypy("import codeloop.no_such_module\n", tmp_path)
    assert done.returncode == 1 and 'module named "codeloop.no_such_module"' in done.stdout, done.stdout


def test_the_untyped_third_party_packages_are_let_off(tmp_path: Path) -> None:
    pytest.importorskip("radon")
    done = _mypy("import radon.complexity\nimport radon.metrics\n", tmp_path)
    assert done.returncode == 0, done.stdout
