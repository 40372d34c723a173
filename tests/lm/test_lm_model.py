"""Embed, encode, decode: the models are causal, tie their weights, and the KV cache is exact."""

from __future__ import annotations

import pytest
import torch

from codeloop.errors import ConfigError
from codeloop.lm.generate import filter_logits
from codeloop.lm.model import ModelConfig, build_model, count_parameters

CONFIGS = [
    ModelConfig(
        arch="transformer", vocab_size=97, block_size=32, d_model=32, n_layer=2, n_head=4, positions="rope"
    ),
    ModelConfig(
        arch="transformer", vocab_size=97, block_size=32, d_model=32, n_layer=2, n_head=4, positions="learned"
    ),
    ModelConfig(arch="lstm", vocab_size=97, block_size=32, d_model=32, n_layer=2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rope", "learned", "lstm"])
def test_incremental_decoding_matches_the_full_forward_pass(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, 20))
    with torch.no_grad():
        full, _ = model(idx)
        logits, state = model(idx[:, :12])  # prefill
        steps = [logits]
        for t in range(12, 20):
            step_logits, state = model(idx[:, t : t + 1], state)
            steps.append(step_logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rope", "learned", "lstm"])
def test_the_past_does_not_see_the_future(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    a = torch.randint(0, cfg.vocab_size, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % cfg.vocab_size
    with torch.no_grad():
        la, _ = model(a)
        lb, _ = model(b)
    assert torch.allclose(la[:, :10], lb[:, :10], atol=1e-6)
    assert not torch.allclose(la[:, 10:], lb[:, 10:])


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rope", "learned", "lstm"])
def test_output_layer_is_tied_to_the_embedding(cfg: ModelConfig) -> None:
    model = build_model(cfg)
    assert model.head.weight is model.embed.weight  # type: ignore[union-attr]
    in_state = sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())
    # the state dict lists the shared table twice (embed and head); the model learns it once
    assert count_parameters(model) == in_state - cfg.vocab_size * cfg.d_model


def test_context_window_is_enforced() -> None:
    model = build_model(CONFIGS[0])
    with pytest.raises(ValueError, match="context window"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_bad_shapes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="multiple of n_head"):
        ModelConfig(d_model=30, n_head=4)
    with pytest.raises(ConfigError, match="architecture"):
        ModelConfig(arch="rnn")


def test_top_k_and_top_p_filtering() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isinf(filter_logits(logits, 2, None)[2:]).all()
    assert not torch.isinf(filter_logits(logits, 2, None)[:2]).any()
    kept = ~torch.isinf(filter_logits(logits, None, 0.7))
    assert kept.tolist() == [True, True, False, False]  # 0.5 < 0.7, then 0.8 crosses it
