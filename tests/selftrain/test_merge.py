"""Merging a LoRA adapter into its base GGUF (``codeloop.selftrain.merge``, ``codeloop adapters merge``).

Real files throughout: random adapters written with the production exporter onto the bundled
SmolLM2 (135M, Q4_1; a few seconds per merge) and, once, the default Qwen 0.5B; llama.cpp runs
the runtime adapter and the merged models side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codeloop.cli import main
from codeloop.errors import ConfigError
from codeloop.evals.resume import meta_path
from codeloop.llm import check_model
from codeloop.llm.adapters import MERGED_FILE, choose_adapter, list_adapters, register_adapter
from codeloop.selftrain.merge import MergeError, gguf_tensor_types, merge_adapter, merge_lora
from lora_files import PROJ, gguf_shape, write_adapter

pytestmark = [pytest.mark.model, pytest.mark.slow]

PROMPTS = [
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n",
]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory of this test's own files (tmp_path also holds the user dir)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def smollm_shape(smollm_path: Path) -> dict[str, Any]:
    return gguf_shape(smollm_path)


class Runs:
    """Last-position logits, greedy tokens and teacher-forced top-1 hits of one llama.cpp model."""

    def __init__(self, path: Path, lora: Path | None = None) -> None:
        from codeloop.llm.llama_load import load_llama
        from codeloop.llm.settings import EmbeddedSettings

        self.llama = load_llama(path, EmbeddedSettings.resolve(n_ctx=256, n_threads=1), lora_path=lora)

    def __enter__(self) -> Runs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.llama.close()

    def _logits(self) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self.llama.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.llama.n_vocab(),)).copy()

    def _start(self, prompt: str) -> np.ndarray:
        self.llama.reset()
        self.llama.eval(self.llama.tokenize(prompt.encode(), add_bos=False, special=True))
        return self._logits()

    def first_logits(self, prompt: str) -> np.ndarray:
        return self._start(prompt)

    def greedy(self, prompt: str, n: int) -> list[int]:
        logits, out = self._start(prompt), []
        for _ in range(n):
            out.append(int(np.argmax(logits)))
            self.llama.eval([out[-1]])
            logits = self._logits()
        return out

    def top1_hits(self, prompt: str, reference: list[int]) -> int:
        logits, hits = self._start(prompt), 0
        for token in reference:
            hits += int(np.argmax(logits)) == token
            self.llama.eval([token])
            logits = self._logits()
        return hits


def test_merged_model_agrees_with_the_runtime_adapter(
    smollm_path: Path, smollm_shape: dict[str, Any], work: Path
) -> None:
    adapter = write_adapter(work / "adapter.gguf", smollm_shape, sigma=0.1)
    result = merge_lora(smollm_path, adapter, work / "merged.gguf")  # default: q8_0
    assert result.tensor_type == "q8_0" and result.merged_tensors == 4 * smollm_shape["layers"]
    assert result.scale == 2.0
    assert sorted(p.name for p in work.iterdir()) == ["adapter.gguf", "merged.gguf"]  # no leftovers

    n = 24
    with Runs(smollm_path, adapter) as runtime:
        references = [runtime.greedy(p, n) for p in PROMPTS]
        runtime_logits = [runtime.first_logits(p) for p in PROMPTS]
    figures = {}
    for name, path in (("base", smollm_path), ("merged", result.path)):
        with Runs(path) as model:
            figures[name] = {
                "top1": sum(model.top1_hits(p, ref) for p, ref in zip(PROMPTS, references, strict=True)),
                "greedy": [model.greedy(p, n) for p in PROMPTS],
                "logits": [model.first_logits(p) for p in PROMPTS],
            }
    base, merged = figures["base"], figures["merged"]
    total = n * len(PROMPTS)
    assert base["greedy"] != references  # the adapter changes the greedy replies
    assert base["top1"] < 0.95 * total
    assert merged["top1"] >= 0.95 * total  # the merged model follows the adapter's replies
    assert merged["top1"] > base["top1"]
    for b, m, r in zip(base["logits"], merged["logits"], runtime_logits, strict=True):
        assert np.linalg.norm(m - r) < 0.5 * np.linalg.norm(b - r)
        assert np.corrcoef(m - b, r - b)[0, 1] > 0.9  # the same change as the runtime adapter's


def test_merge_in_the_base_types_keeps_every_type_and_all_metadata(
    smollm_path: Path, smollm_shape: dict[str, Any], work: Path
) -> None:
    import gguf

    adapter = write_adapter(work / "adapter.gguf", smollm_shape, sigma=0.1, layers=range(0, 30, 3))
    result = merge_lora(smollm_path, adapter, work / "merged.gguf", tensor_type="base", threads=2)
    assert result.types_equal_base and result.merged_tensors == 40
    base_types, merged_types = gguf_tensor_types(smollm_path), gguf_tensor_types(result.path)
    assert merged_types == base_types  # the same tensors of the same types (llama.cpp orders them its way)
    assert {"Q4_1", "Q8_0", "F32"} <= set(base_types.values())
    assert sorted(p.name for p in work.iterdir()) == ["adapter.gguf", "merged.gguf"]  # intermediate removed

    base, merged = gguf.GGUFReader(str(smollm_path)), gguf.GGUFReader(str(result.path))
    fields = {k: f.contents() for k, f in base.fields.items() if not k.startswith("GGUF.")}
    assert {k: f.contents() for k, f in merged.fields.items() if not k.startswith("GGUF.")} == fields
    base_data = {t.name: t.data for t in base.tensors}
    changed = {t.name for t in merged.tensors if not np.array_equal(t.data, base_data[t.name])}
    assert changed and changed <= {f"blk.{i}.{p}.weight" for i in range(0, 30, 3) for p in PROJ.values()}
    with Runs(result.path) as model:  # llama.cpp loads it and it still writes text
        assert len(set(model.greedy(PROMPTS[1], 8))) > 2


def test_a_zero_adapter_merges_into_the_base_itself(
    smollm_path: Path, smollm_shape: dict[str, Any], work: Path
) -> None:
    adapter = write_adapter(work / "zero.gguf", smollm_shape, sigma=0.0)
    result = merge_lora(smollm_path, adapter, work / "merged.gguf", tensor_type="base", threads=2)
    assert result.merged_tensors == 0 and result.types_equal_base
    with Runs(smollm_path) as base:
        expected = [(base.first_logits(p), base.greedy(p, 16)) for p in PROMPTS]
    with Runs(result.path) as merged:
        got = [(merged.first_logits(p), merged.greedy(p, 16)) for p in PROMPTS]
    for (bl, bg), (ml, mg) in zip(expected, got, strict=True):
        assert np.array_equal(bl, ml)
        assert bg == mg


def test_registry_runs_the_merged_model_and_keeps_the_runtime_adapter_at_hand(
    smollm_path: Path, smollm_shape: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codeloop.llm import get_model

    base = f"gguf:{smollm_path}"
    adapter = write_adapter(tmp_path / "a.gguf", smollm_shape, sigma=0.1, layers=range(4))
    registered = register_adapter("mine", adapter, base)
    assert choose_adapter("mine", base) == (registered.path, False)  # not merged yet: the runtime adapter
    with pytest.raises(ConfigError, match="no current merged model"):
        choose_adapter("mine:merged", base)
    # an eval started on the runtime adapter (BASE+NAME, not merged yet) ...
    samples = tmp_path / "samples.jsonl"
    first = _codeloop("eval", "humaneval", "--model", f"{base}+mine", "--limit", "1", "--max-tokens", "16",
                      "--no-progress", "--out", str(samples))
    assert first.returncode == 0, first.stderr
    assert json.loads(meta_path(samples).read_text())["model"] == f"{base}+mine:lora"

    assert main(["adapters", "merge", "mine", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    merged = registered.path.parent / MERGED_FILE
    assert record["type"] == "q8_0" and record["merged_tensors"] == 16 and merged.is_file()
    assert list_adapters()[0].merged == merged
    # ... is not continued by the same command once BASE+NAME loads the merged model (it used to be,
    # under the same name, mixing the two models' samples in one file)
    again = _codeloop("eval", "humaneval", "--model", f"{base}+mine", "--limit", "1", "--max-tokens", "16",
                      "--no-progress", "--out", str(samples))
    assert again.returncode == 2  # a usage error
    assert f"model: '{base}+mine:lora' then, '{base}+mine:merged' now" in again.stderr
    model = get_model(f"{base}+mine", n_ctx=256)
    assert model.path == merged and model.adapter is None  # type: ignore[attr-defined]
    lora = get_model(f"{base}+mine:lora", n_ctx=256)
    assert lora.path == smollm_path and lora.adapter == registered.path  # type: ignore[attr-defined]
    # the name says which of the two runs, and loads the same thing again
    assert (model.name, lora.name) == (f"{base}+mine:merged", f"{base}+mine:lora")
    assert get_model(model.name, n_ctx=256).runtime is model.runtime  # type: ignore[attr-defined]
    assert get_model(lora.name, n_ctx=256).runtime is lora.runtime  # type: ignore[attr-defined]
    # codeloop run reports it and the history records it
    for name in (f"{base}+mine", f"{base}+mine:lora"):
        run = _codeloop("run", "--model", name, "--max-steps", "1", "--max-tokens", "8", "--json", "What is 2+2?")
        assert run.stdout, run.stderr
        assert json.loads(run.stdout)["model"] == check_model(name).name
    listed = json.loads(_codeloop("history", "list", "--json").stdout)
    assert [row["model"] for row in listed] == [f"{base}+mine:lora", f"{base}+mine:merged"]  # newest first
    assert choose_adapter("mine:merged", base) == (merged, True)
    with pytest.raises(ConfigError, match="NAME:lora or NAME:merged"):
        choose_adapter("mine:other", base)
    # another base: the merge is not for it (the runtime adapter is what BASE+NAME tries there)
    assert choose_adapter("mine", "gguf:/elsewhere/model.gguf") == (registered.path, False)
    with pytest.raises(ConfigError, match="trained on"):
        choose_adapter("mine:merged", "gguf:/elsewhere/model.gguf")

    assert main(["adapters"]) == 0
    assert "merged (q8_0)" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["adapters"]
    assert [(a["name"], a["merged"], a["runs"]) for a in listed] == [("mine", "q8_0", "merged model")]

    # the adapter file changes behind the registry's back: the merge is stale, never used
    original = registered.path.read_bytes()
    registered.path.write_bytes(
        write_adapter(tmp_path / "b.gguf", smollm_shape, sigma=0.1, layers=range(2), seed=1).read_bytes()
    )
    assert list_adapters()[0].merged is None
    assert choose_adapter("mine", base) == (registered.path, False)
    assert check_model(f"{base}+mine").name == f"{base}+mine:lora"  # not the merged model's name
    assert main(["adapters"]) == 0
    assert "stale merge" in capsys.readouterr().out
    registered.path.write_bytes(original)
    assert choose_adapter("mine", base) == (merged, True)

    # registering a new adapter under the name removes the merge made from the old one
    register_adapter("mine", tmp_path / "b.gguf", base)
    assert not merged.exists() and choose_adapter("mine", base)[1] is False

    # a merged.gguf codeloop did not record is neither used, replaced nor removed
    merged.write_bytes(b"someone else's file")
    assert choose_adapter("mine", base)[1] is False
    with pytest.raises(ConfigError, match="not a merge codeloop recorded"):
        merge_adapter("mine")
    assert merged.read_bytes() == b"someone else's file"
    register_adapter("mine", adapter, base)
    assert merged.read_bytes() == b"someone else's file"


def _codeloop(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *argv], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def _fake_base(path: Path, arch: str = "llama", dims: tuple[int, int] = (64, 32)) -> Path:
    """A small GGUF that is a model only in name: enough for the checks before any merging."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("blk.0.attn_q.weight", np.zeros(dims, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_clear_errors_and_nothing_left_behind(
    smollm_shape: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = write_adapter(tmp_path / "adapter.gguf", smollm_shape, sigma=0.1, layers=range(1))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")

    with pytest.raises(MergeError, match="wrong base"):  # an adapter for 576-wide SmolLM on a 32-wide model
        merge_lora(_fake_base(tmp_path / "small.gguf"), adapter, out_dir / "m.gguf")
    with pytest.raises(MergeError, match="architecture 'llama', the base model is 'qwen2'"):
        merge_lora(_fake_base(tmp_path / "qwen.gguf", "qwen2"), adapter, out_dir / "m.gguf")
    with pytest.raises(MergeError, match="not a LoRA adapter"):
        merge_lora(tmp_path / "small.gguf", tmp_path / "small.gguf", out_dir / "m.gguf")
    with pytest.raises(MergeError, match="base model not found"):
        merge_lora(tmp_path / "missing.gguf", adapter, out_dir / "m.gguf")
    with pytest.raises(MergeError, match="unknown merged tensor type"):
        merge_lora(tmp_path / "small.gguf", adapter, out_dir / "m.gguf", tensor_type="q2_k")

    # an adapter that fits, on a file llama.cpp cannot quantise: the error says so, the temporaries go
    fits = tmp_path / "fits.gguf"
    fits_state = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.ones((2, 32), np.float32),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.ones((64, 2), np.float32),
    }
    from codeloop.selftrain.gguf_adapter import write_lora_gguf

    write_lora_gguf(fits_state, fits, architecture="llama", alpha=2.0, n_head=2, n_head_kv=2)
    with pytest.raises(MergeError, match=r"llama\.cpp could not quantise"):
        merge_lora(tmp_path / "small.gguf", fits, out_dir / "m.gguf", tensor_type="base", threads=1)
    assert sorted(os.listdir(out_dir)) == ["keep.txt"]
    merged = merge_lora(tmp_path / "small.gguf", fits, out_dir / "m.gguf", tensor_type="f16")
    assert gguf_tensor_types(merged.path) == {"blk.0.attn_q.weight": "F16"}

    # not enough disk space: refused before writing anything
    import shutil
    from types import SimpleNamespace

    monkeypatch.setattr(shutil, "disk_usage", lambda _p: SimpleNamespace(total=10**9, used=10**9, free=1000))
    with pytest.raises(MergeError, match="not enough disk space"):
        merge_lora(tmp_path / "small.gguf", fits, out_dir / "n.gguf")
    assert sorted(os.listdir(out_dir)) == ["keep.txt", "m.gguf"]
    assert (out_dir / "keep.txt").read_text() == "mine"


@pytest.fixture
def qwen_home(default_ready: Path, codeloop_home: Path) -> Iterator[Path]:
    yield default_ready


def test_qwen_adapter_merges_through_the_cli_and_runs_as_base_plus_name(
    qwen_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real target: the bundled Q4_K_M Qwen (Q5_0/Q8_0/Q4_K/Q6_K tensors), named qwen-coder-0.5b+NAME."""
    import gguf

    from codeloop.llm import get_model

    reader = gguf.GGUFReader(str(qwen_home))
    shape = {
        "arch": "qwen2",
        "layers": 24,
        "n_head": 14,
        "n_head_kv": 2,
        "dims": {t.name: tuple(int(n) for n in reversed(t.shape.tolist())) for t in reader.tensors},
    }
    del reader
    adapter = write_adapter(tmp_path / "a.gguf", shape, sigma=0.05, layers=range(0, 24, 4))
    register_adapter("tiny", adapter, "qwen-coder-0.5b")
    assert main(["adapters", "merge", "tiny", "--type", "base"]) == 0
    assert "--model qwen-coder-0.5b+tiny now loads it" in capsys.readouterr().out
    merged = get_model("qwen-coder-0.5b+tiny", n_ctx=256)
    try:
        assert merged.path.name == MERGED_FILE and merged.adapter is None  # type: ignore[attr-defined]
        assert merged.name == "qwen-coder-0.5b+tiny:merged"
        assert gguf_tensor_types(merged.path) == gguf_tensor_types(qwen_home)  # type: ignore[attr-defined]
        reply = merged.complete_text(PROMPTS[0], max_tokens=8, temperature=0.0).text
        assert reply.strip()
    finally:
        merged.runtime.close()  # type: ignore[attr-defined]
        merged.path.unlink()  # type: ignore[attr-defined]  # 491 MB this test wrote; pytest keeps tmp dirs
