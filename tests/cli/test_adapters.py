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


def test_merge_types_have_one_source_and_parsing_loads_no_numpy() -> None:
    """Both commands offer ``MERGE_TYPES`` itself (not a copy that could drift), and parsing them
    does not import numpy (which ``codeloop.selftrain.merge`` loads)."""
    script = """
import json, sys
from codeloop.cli import build_parser
found = {}
for argv, dest in ((["adapters", "merge", "x"], "tensor_type"), (["selftrain", "--merge"], "merge")):
    parser, _ = build_parser(argv)
    args = parser.parse_args(argv)
    command = next(a for a in parser._actions if a.dest == "command").choices[argv[0]]
    action = next(a for a in command._actions if a.dest == dest)
    found[argv[0]] = (action, getattr(args, dest))
numpy = "numpy" in sys.modules
from codeloop.selftrain import constants, merge
print(json.dumps({
    "numpy": numpy,
    "same": [a.choices is constants.MERGE_TYPES for a, _ in found.values()] + [merge.MERGE_TYPES is constants.MERGE_TYPES],
    "chosen": [v for _, v in found.values()],
    "types": list(constants.MERGE_TYPES),
    "default": constants.DEFAULT_MERGE_TYPE,
}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["numpy"] is False
    assert got["same"] == [True, True, True]
    assert got["types"] == ["q8_0", "f16", "base"] and got["default"] == "q8_0"
    assert got["chosen"] == ["q8_0", "q8_0"]  # --type's default and --merge's bare value
