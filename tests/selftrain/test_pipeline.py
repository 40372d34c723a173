"""``codeloop selftrain`` end to end at a tiny size with the real default model, and its resume rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codeloop.errors import ConfigError
from codeloop.selftrain.lora import LoraConfig
from codeloop.selftrain.pipeline import SelftrainConfig, run_pipeline


def test_a_run_directory_keeps_its_settings(tmp_path: Path) -> None:
    config = SelftrainConfig(tasks=5, seed=1)
    report = run_pipeline(tmp_path, config, stop_after="tasks")
    assert report["stages"]["tasks"]["tasks"] == 5
    first = (tmp_path / "tasks.jsonl").read_text()
    run_pipeline(tmp_path, config, stop_after="tasks")
    assert (tmp_path / "tasks.jsonl").read_text() == first
    with pytest.raises(ConfigError, match="other settings"):
        run_pipeline(tmp_path, SelftrainConfig(tasks=6, seed=1), stop_after="tasks")
    with pytest.raises(ConfigError, match="unknown stage"):
        run_pipeline(tmp_path, config, stop_after="everything")


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "codeloop", "selftrain", "--steps", "0", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "steps must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.model
@pytest.mark.slow
def test_tiny_pipeline_trains_registers_and_changes_the_model(tmp_path: Path) -> None:
    from codeloop.llm import get_model

    config = SelftrainConfig(
        name="citest", tasks=2, samples_per_task=2, temperature=0.7, seed=0,
        families=("reverse-word", "distinct-letters"),
        lora=LoraConfig(steps=2, batch=1, lr=2e-3, warmup=1, max_len=768),
    )
    report = run_pipeline(tmp_path / "run", config)
    stages = report["stages"]
    assert list(stages) == ["tasks", "sample", "select", "train", "export", "register"]
    assert stages["sample"]["samples"] == 4
    assert stages["select"]["kept"] >= 1
    assert stages["export"]["tensors"] == 2 * 4 * 24  # q/k/v/o in each of Qwen2.5-0.5B's 24 blocks
    assert stages["register"]["model"] == "qwen-coder-0.5b+citest"
    rows = [json.loads(x) for x in (tmp_path / "run" / "train.jsonl").read_text().splitlines()]
    assert rows[0]["prompt"].startswith("<|im_start|>system")  # the agent's own prompt, rendered
    assert "```python" in rows[0]["completion"]

    # a second call resumes: every stage is already done, nothing is redone
    again = run_pipeline(tmp_path / "run", config)
    assert again["stages"]["train"] == stages["train"]

    prompt = rows[0]["prompt"]
    base = get_model("qwen-coder-0.5b", n_ctx=2048)
    tuned = get_model("qwen-coder-0.5b+citest", n_ctx=2048)
    assert tuned.runtime is not base.runtime
    b = np.array(_last_logits(base, prompt))
    t = np.array(_last_logits(tuned, prompt))
    assert np.linalg.norm(t - b) > 1e-3 * np.linalg.norm(b)


def _last_logits(model: object, prompt: str) -> list[float]:
    import llama_cpp

    llama = model.runtime.llama  # type: ignore[attr-defined]
    tokens = llama.tokenize(prompt.encode(), add_bos=False, special=True)
    llama.reset()
    llama.eval(tokens)
    ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return list(np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),)))
