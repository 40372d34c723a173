"""Load a trained model and sample from it: temperature, top-k, top-p, with a KV cache.

The prompt is encoded once (prefill), then each new token costs one step over the cache. When
the context window fills up, the newest half of the text is encoded again and generation goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from codeloop.errors import ModelError
from codeloop.lm.checkpoint import load_checkpoint
from codeloop.lm.data import UnigramBytes
from codeloop.lm.model import ModelConfig, build_model
from codeloop.lm.tokenizer import Tokenizer

__all__ = ["LoadedLM", "filter_logits", "load_lm"]


@dataclass
class LoadedLM:
    """A trained model ready for evaluation and generation."""

    model: nn.Module
    tokenizer: Tokenizer
    config: ModelConfig
    unigram: UnigramBytes
    step: int
    train_config: dict[str, Any]
    history: list[dict[str, Any]]

    def generate(
        self,
        prompt_ids: list[int],
        *,
        max_new_tokens: int,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop_ids: frozenset[int] = frozenset(),
    ) -> Iterator[int]:
        """Yield new token ids one at a time; stops after a token in ``stop_ids`` (not yielded)."""
        if not prompt_ids:
            prompt_ids = [self.tokenizer.eot_id]
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        window = self.config.block_size
        ids = list(prompt_ids)
        with torch.no_grad():
            self.model.eval()
            state: Any = None
            pending = ids[-(window - 1) :] if len(ids) >= window else ids
            for _ in range(max_new_tokens):
                if state is not None and _position(state, self.config) >= window:
                    pending = ids[-(window // 2) :]  # the window is full: re-encode its newest half
                    state = None
                logits, state = self.model(torch.tensor([pending]), state)
                token = sample_token(logits[0, -1], temperature, top_k, top_p, generator)
                if token in stop_ids:
                    return
                ids.append(token)
                pending = [token]
                yield token


def _position(state: Any, cfg: ModelConfig) -> int:
    return int(state[0]) if cfg.arch == "transformer" else 0


def filter_logits(logits: Tensor, top_k: int | None, top_p: float | None) -> Tensor:
    """Mask all but the ``top_k`` most likely tokens, then all outside the ``top_p`` nucleus."""
    logits = logits.clone()
    if top_k is not None and 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token that crosses top_p
        logits[order[drop]] = float("-inf")
    return logits


def sample_token(
    logits: Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> int:
    if temperature <= 0:
        return int(torch.argmax(logits))
    logits = filter_logits(logits / temperature, top_k, top_p)
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def load_lm(target: str | os.PathLike[str]) -> LoadedLM:
    """Load ``DIR`` (or ``DIR/checkpoint.pt``) for inference; clear errors for bad checkpoints."""
    data = load_checkpoint(target)
    try:
        cfg = ModelConfig.from_dict(dict(data["model_config"]))
        tok = Tokenizer.from_json(data["tokenizer"])
        model = build_model(cfg)
        model.load_state_dict(data["model"])
    except ModelError:
        raise
    except Exception as e:  # a checkpoint whose parts do not fit together
        raise ModelError(f"the checkpoint in {target} does not load: {type(e).__name__}: {e}") from e
    if tok.vocab_size != cfg.vocab_size:
        raise ModelError(
            f"the checkpoint in {target} has a tokeniser of {tok.vocab_size} tokens for a model of {cfg.vocab_size}"
        )
    model.eval()
    return LoadedLM(
        model=model,
        tokenizer=tok,
        config=cfg,
        unigram=UnigramBytes(tuple(int(c) for c in data["unigram"])),
        step=int(data["step"]),
        train_config=dict(data["train_config"]),
        history=list(data.get("history", [])),
    )
