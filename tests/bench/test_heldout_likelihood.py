"""bench/heldout_likelihood.py on a real model (SmolLM2-135M): its one-pass score equals llama.cpp's
token-by-token log-probabilities, and the paired report is right for identical and for different
models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench_scripts import BENCH, load_bench

pytestmark = [pytest.mark.model]



bench = load_bench("heldout_likelihood")


def _last_logprobs(llama_cpp: ModuleType, llama: object) -> np.ndarray:
    ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)  # type: ignore[attr-defined]
    logits = np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),)).astype(np.float64)  # type: ignore[attr-defined]
    logits -= logits.max()
    return logits - np.log(np.exp(logits).sum())


def test_one_pass_score_is_the_token_by_token_log_likelihood(smollm_path: Path) -> None:
    import llama_cpp

    from codeloop.llm.llama_load import load_llama
    from codeloop.llm.settings import EmbeddedSettings

    settings = EmbeddedSettings.resolve(n_ctx=512)
    prompt = "<|im_start|>user\nWrite a function that adds two numbers.<|im_end|>\n<|im_start|>assistant\n"
    reply = "def add(a, b):\n    return a + b\n```"
    llama = load_llama(smollm_path, settings, logits_all=True)
    try:
        nll, tokens, top1 = bench.score(llama, prompt, reply)
    finally:
        llama.close()
    # the reference: for each reply token, the prompt and the reply before it evaluated afresh, and
    # the log-probability of the token at the last position (indexing checked exactly); then
    # generation's own path, one token at a time (other kernels: close, not equal)
    plain = load_llama(smollm_path, settings)
    try:
        head = plain.tokenize(prompt.encode(), add_bos=False, special=True)
        tail = plain.tokenize(reply.encode(), add_bos=False, special=False)
        expected, hits, stepped = 0.0, 0, 0.0
        for i, token in enumerate(tail):
            plain.reset()
            plain.eval(head + tail[:i])
            logp = _last_logprobs(llama_cpp, plain)
            expected -= logp[token]
            hits += int(logp.argmax()) == token
        plain.reset()
        plain.eval(head)
        for token in tail:
            stepped -= _last_logprobs(llama_cpp, plain)[token]
            plain.eval([token])
    finally:
        plain.close()
    assert tokens == len(tail) > 5
    assert nll == pytest.approx(expected, rel=1e-4)
    assert top1 == hits
    assert abs(nll - stepped) / tokens < 0.05
    assert 0 < nll / tokens < 10


def _run(models: str, home: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(BENCH / "heldout_likelihood.py"),
            "--set",
            "functions",
            "--count",
            "6",
            "--models",
            models,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CODELOOP_HOME": str(home)},
    )


def test_paired_report_of_a_model_against_itself_with_an_adapter(
    smollm_path: Path, codeloop_home: Path, tmp_path: Path
) -> None:
    from lora_files import gguf_shape, write_adapter

    shape = gguf_shape(smollm_path)
    zero = write_adapter(tmp_path / "zero.gguf", shape, sigma=0.0)  # B = 0: the base itself
    noisy = write_adapter(tmp_path / "noisy.gguf", shape, sigma=0.2, seed=3)
    base, same, other = f"gguf:{smollm_path}", f"gguf:{smollm_path}+{zero}", f"gguf:{smollm_path}+{noisy}"
    proc = _run(",".join([base, same, other]), codeloop_home, tmp_path / "rows.jsonl")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["set"] == "functions" and report["problems"] == 6
    first, zeroed, changed = (report["models"][n] for n in (base, same, other))
    assert first["tokens"] == zeroed["tokens"] == changed["tokens"] > 50
    assert zeroed["vs_first"] == pytest.approx(0.0, abs=1e-3)  # an adapter with B = 0 changes nothing
    assert changed["vs_first"] > 0.05  # random weights make correct code less likely
    assert changed["less_likely"] == 6 and changed["more_likely"] == 0
    assert changed["ci95"][0] <= changed["vs_first"] <= changed["ci95"][1]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r[other]["nll"] > r[base]["nll"] for r in rows)


def test_a_model_named_twice_is_refused(smollm_path: Path, codeloop_home: Path, tmp_path: Path) -> None:
    proc = _run(f"gguf:{smollm_path},gguf:{smollm_path}", codeloop_home, tmp_path / "rows.jsonl")
    assert proc.returncode == 2 and "names a model twice" in proc.stderr
    assert not (tmp_path / "rows.jsonl").exists()
