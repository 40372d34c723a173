"""``codeloop adapters``: the listing and the merge command's errors, through the real command.

Merging itself (real models) is tested in tests/selftrain/test_merge.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codeloop.llm.adapters import register_adapter


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py), created up front, as an
    existing user's would be."""
    codeloop_home.mkdir()
    return codeloop_home


def codeloop(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *argv], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def _small_model(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((8, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_listing_empty_then_one_adapter(tmp_path: Path) -> None:
    proc = codeloop("adapters")
    assert proc.returncode == 0 and "no adapters registered" in proc.stdout
    assert json.loads(codeloop("adapters", "--json").stdout) == []

    src = tmp_path / "a.gguf"
    src.write_bytes(b"GGUF not really")
    register_adapter("mine", src, "qwen-coder-0.5b")
    proc = codeloop("adapters")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[1].split() == ["mine", "qwen-coder-0.5b", "not", "merged"]
    assert "BASE+NAME:lora" in proc.stdout
    rows = json.loads(codeloop("adapters", "--json").stdout)
    assert rows[0]["model"] == "qwen-coder-0.5b+mine" and rows[0]["merged"] is None
    models = codeloop("models")
    assert "qwen-coder-0.5b+mine  not merged" in models.stdout


def test_merge_errors_are_one_clear_line(tmp_path: Path) -> None:
    proc = codeloop("adapters", "merge")
    assert proc.returncode == 1 and "name the adapter to merge" in proc.stderr
    proc = codeloop("adapters", "merge", "nope")
    assert proc.returncode == 1 and "unknown adapter 'nope'" in proc.stderr
    proc = codeloop("adapters", "merge", "x", "--type", "q2_k")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr

    base = _small_model(tmp_path / "small.gguf")
    src = tmp_path / "a.gguf"
    src.write_bytes(b"not a gguf file at all")
    register_adapter("broken", src, f"gguf:{base}")
    proc = codeloop("adapters", "merge", "broken")
    assert proc.returncode == 1 and "cannot read adapter" in proc.stderr
    assert "Traceback" not in proc.stderr
    register_adapter("gone", src, f"gguf:{tmp_path / 'missing.gguf'}")
    proc = codeloop("adapters", "merge", "gone")
    assert proc.returncode == 1 and "model file not found" in proc.stderr
    assert sorted(os.listdir(src.parent)) == ["a.gguf", "codeloop-home", "small.gguf"]
