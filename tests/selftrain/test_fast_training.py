"""The fast CPU training path: bf16 autocast where the CPU has it, logits only where a reply token is predicted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codeloop.selftrain.lora import LoraConfig, TrainingError, cpu_bf16_flags, resolve_precision

AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AVX512_BF16 = "flags\t\t: fpu sse2 avx512f avx512_bf16\n"
PLAIN = "flags\t\t: fpu sse2 avx2\n"


def test_precision_follows_the_cpu_flags() -> None:
    assert cpu_bf16_flags(AMX) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_flags(AVX512_BF16) == ["avx512_bf16"]
    assert cpu_bf16_flags(PLAIN) == []
    assert resolve_precision("auto", AMX) == "bf16"
    assert resolve_precision("auto", PLAIN) == "fp32"
    assert resolve_precision("fp32", AMX) == "fp32"  # the flag that forces fp32
    assert resolve_precision("bf16", PLAIN) == "bf16"
    with pytest.raises(TrainingError, match="precision must be one of"):
        LoraConfig(precision="fp16")


@pytest.mark.model
@pytest.mark.slow
def test_logits_for_the_reply_only_give_the_same_loss_and_gradients(smollm_path: Path) -> None:
    import torch

    from codeloop.selftrain.lora import (
        TrainExample,
        _encode,
        _example_loss,
        _logits_to_keep_argument,
        load_base,
    )

    model, tokenizer = load_base(smollm_path)
    keep = _logits_to_keep_argument(model)
    assert keep == "logits_to_keep"
    example = TrainExample(
        "<|im_start|>user\nWrite a function that adds two numbers, with a docstring.<|im_end|>\n<|im_start|>assistant\n",
        "```python\ndef add(a, b):\n    return a + b\n```<|im_end|>",
    )
    ids, labels = _encode(tokenizer, example, 256)
    assert labels.count(-100) > 10  # a prompt whose logits the fast path skips

    def loss_and_grad(precision: str, keep_arg: str | None) -> tuple[float, int, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        loss, tokens = _example_loss(torch, model, ids, labels, precision, keep_arg)
        loss.backward()
        grad = model.model.layers[-1].self_attn.q_proj.weight.grad.detach().clone()
        return float(loss.detach()), tokens, grad

    full, n_full, g_full = loss_and_grad("fp32", None)
    fast, n_fast, g_fast = loss_and_grad("fp32", keep)
    assert n_full == n_fast == sum(1 for x in labels if x != -100)
    assert fast == pytest.approx(full, rel=1e-5)
    assert torch.allclose(g_fast, g_full, rtol=1e-3, atol=1e-6)
    half, _, g_half = loss_and_grad("bf16", keep)
    assert half == pytest.approx(full, rel=0.03)  # bf16 matmuls, float32 loss
    cos = torch.nn.functional.cosine_similarity(g_half.flatten(), g_full.flatten(), dim=0)
    assert float(cos) > 0.95


_FN_PROMPT = "<|im_start|>user\nComplete the function.<|im_end|>\n<|im_start|>assistant\n```python\ndef {name}(xs):\n"


def _examples(names: list[str], reply: str, source: str) -> list[Any]:
    from codeloop.selftrain.lora import TrainExample

    return [TrainExample(_FN_PROMPT.format(name=name), reply, source) for name in names]


def _reply_loss(net: Any, tokenizer: Any, example: Any) -> float:
    """Loss per reply token of ``example`` under ``net`` (float32, no gradient)."""
    import torch

    from codeloop.selftrain.lora import _encode, _example_loss

    ids, labels = _encode(tokenizer, example, 256)
    with torch.no_grad():
        loss, tokens = _example_loss(torch, net, ids, labels, "fp32", "logits_to_keep")
    return float(loss) / tokens


@pytest.mark.model
@pytest.mark.slow
def test_validation_loss_is_measured_before_during_and_after_training(smollm_path: Path) -> None:
    from codeloop.selftrain.lora import load_base, train_lora

    model, tokenizer = load_base(smollm_path)
    seen = _examples([f"total_{i}" for i in range(3)], "    return sum(xs)\n```", "functions")
    unseen = _examples(["added_up"], "    return sum(xs)\n```", "validation")
    untrained = _reply_loss(model, tokenizer, unseen[0])
    config = LoraConfig(rank=4, steps=6, batch=1, lr=5e-3, warmup=1, precision="fp32")
    _, log = train_lora(model, tokenizer, seen, config, validation=unseen, validate_every=2)
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6]  # training steps only; the log's shape is kept
    assert log[0]["validation_before"] == pytest.approx(untrained, rel=1e-4)  # LoRA B = 0: the base itself
    measured = [e["step"] for e in log if "validation_loss" in e]
    assert measured == [2, 4, 6]
    # the held-out task's reply is what training teaches for other names: it becomes more likely
    assert log[-1]["validation_loss"] < 0.7 * untrained
    assert all(e["validation_seconds"] >= 0 for e in log) and log[-1]["validation_seconds"] > 0
    assert "validation_before" not in log[1] and "loss" in log[0]


@pytest.mark.model
@pytest.mark.slow
def test_keep_best_restores_the_weights_of_the_lowest_validation_loss(smollm_path: Path) -> None:
    from codeloop.selftrain.lora import load_base, train_lora

    model, tokenizer = load_base(smollm_path)
    seen = _examples([f"total_{i}" for i in range(3)], "    return sum(xs)\n```", "functions")
    # held out: a reply that training soon makes *less* likely, so the last step is not the best
    unseen = _examples(["added_up"], "    return max(xs) * len(xs)\n```", "validation")

    config = LoraConfig(rank=4, steps=6, batch=1, lr=5e-3, warmup=1, precision="fp32", keep_best=True)
    peft_model, log = train_lora(model, tokenizer, seen, config, validation=unseen, validate_every=2)
    points = [(0, log[0]["validation_before"])] + [(e["step"], e["validation_loss"]) for e in log if "validation_loss" in e]
    best_step, best_loss = min(points, key=lambda point: point[1])
    assert points[-1][1] > best_loss  # the last step is not the best: there is something to restore
    assert log[-1]["kept_step"] == best_step
    assert _reply_loss(peft_model, tokenizer, unseen[0]) == pytest.approx(best_loss, rel=1e-4)  # its weights are back
