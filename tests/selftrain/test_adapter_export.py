"""A LoRA trained with PEFT, exported to GGUF, changes llama.cpp's logits the way it changes
transformers': the export (names, shapes, llama's q/k row permutation, alpha) is right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]

PROMPT = "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n"


def _llama_last_logits(path: Path, adapter: Path | None) -> np.ndarray:
    import llama_cpp

    from codeloop.llm.llama_load import load_llama
    from codeloop.llm.settings import EmbeddedSettings

    llama = load_llama(path, EmbeddedSettings.resolve(n_ctx=256), lora_path=adapter)
    try:
        tokens = llama.tokenize(PROMPT.encode(), add_bos=False, special=True)
        llama.reset()
        llama.eval(tokens)
        ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),)).copy()
    finally:
        llama.close()


def test_exported_adapter_moves_llama_cpp_like_transformers(smollm_path: Path, tmp_path: Path) -> None:
    import torch

    from codeloop.llm import get_model
    from codeloop.selftrain.gguf_adapter import write_lora_gguf
    from codeloop.selftrain.lora import (
        LoraConfig,
        TrainExample,
        adapter_state,
        load_base,
        model_shape,
        train_lora,
    )

    model, tokenizer = load_base(smollm_path)
    examples = [TrainExample(PROMPT, "Bonjour! Zebra zebra zebra.")] * 2
    peft_model, log = train_lora(model, tokenizer, examples, LoraConfig(steps=4, batch=2, lr=3e-3, warmup=1))
    assert log[-1]["loss"] < log[0]["loss"]  # it learned the reply
    shape = model_shape(model)
    assert shape["model_type"] == "llama"  # the permuted case
    adapter = tmp_path / "adapter.gguf"
    count = write_lora_gguf(
        adapter_state(peft_model), adapter, architecture="llama", alpha=16.0,
        n_head=shape["n_head"], n_head_kv=shape["n_head_kv"],
    )
    assert count == 2 * 4 * model.config.num_hidden_layers

    ids = torch.tensor([tokenizer(PROMPT, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        hf_adapted = peft_model(input_ids=ids).logits[0, -1].numpy()
        with peft_model.disable_adapter():
            hf_base = peft_model(input_ids=ids).logits[0, -1].numpy()
    ll_base = _llama_last_logits(smollm_path, None)
    ll_adapted = _llama_last_logits(smollm_path, adapter)
    hf_delta, ll_delta = hf_adapted - hf_base, ll_adapted - ll_base
    assert np.linalg.norm(ll_delta) > 0.5 * np.linalg.norm(hf_delta)
    assert np.corrcoef(hf_delta, ll_delta)[0, 1] > 0.95

    # and through codeloop's own model names: greedy text changes with the adapter
    base = get_model(f"gguf:{smollm_path}", n_ctx=256).complete_text(PROMPT, max_tokens=8).text
    tuned = get_model(f"gguf:{smollm_path}+{adapter}", n_ctx=256).complete_text(PROMPT, max_tokens=8).text
    assert tuned != base
    assert "Zebra" in tuned or "Bonjour" in tuned
