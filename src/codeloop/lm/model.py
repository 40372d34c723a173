"""Embed, encode, decode: the two architectures, sharing the tokeniser's embedding table.

``Transformer``: decoder-only, pre-norm blocks (LayerNorm -> causal self-attention -> residual,
LayerNorm -> MLP -> residual), attention through ``F.scaled_dot_product_attention``, rotary
(RoPE) or learned positions, and the output layer tied to the input embedding.
``LSTMModel``: the recurrent baseline with the same embedding and tied output.

Both take token ids ``(batch, time)`` and return next-token logits ``(batch, time, vocab)``
plus a state for incremental decoding: the Transformer's KV cache or the LSTM's ``(h, c)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codeloop.errors import ConfigError

__all__ = ["ARCHS", "LSTMModel", "ModelConfig", "Transformer", "build_model", "count_parameters"]

ARCHS = ("transformer", "lstm")
POSITIONS = ("rope", "learned")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a model; stored in every checkpoint."""

    arch: str = "transformer"
    vocab_size: int = 4096
    block_size: int = 256  # the context window in tokens
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    positions: str = "rope"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}: use one of {', '.join(ARCHS)}")
        if self.positions not in POSITIONS:
            raise ConfigError(f"unknown positions {self.positions!r}: use one of {', '.join(POSITIONS)}")
        for name in ("vocab_size", "block_size", "d_model", "n_layer", "n_head", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.arch == "transformer":
            if self.d_model % self.n_head:
                raise ConfigError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")
            if self.positions == "rope" and (self.d_model // self.n_head) % 2:
                raise ConfigError("RoPE needs an even head size (d_model / n_head)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, the tied embedding counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _rope_tables(head_size: int, length: int) -> tuple[Tensor, Tensor]:
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)  # (T, hs/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, hs): rotate-half layout
    return angles.cos(), angles.sin()


def _apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.head_size = cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout
        self.rope = cfg.positions == "rope"

    def forward(
        self, x: Tensor, rope: tuple[Tensor, Tensor] | None, cache: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, self.n_head, self.head_size).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(b, t, self.n_head, self.head_size).transpose(1, 2)
        v = v.view(b, t, self.n_head, self.head_size).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        # Causal within the new tokens; a single new token may see every cached one.
        causal = t > 1
        if causal and cache is not None and cache[0].shape[2] > 0:
            raise ValueError("prefill with a non-empty cache is not supported: feed new tokens one at a time")
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.proj(y), (k, v)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, rope: tuple[Tensor, Tensor] | None, cache: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        a, kv = self.attn(self.ln1(x), rope, cache)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, kv


class Transformer(nn.Module):
    """Decoder-only Transformer. State: ``(pos, [(k, v) per layer])``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.block_size, cfg.d_model) if cfg.positions == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # weight tying: decode with the embedding table
        if cfg.positions == "rope":
            cos, sin = _rope_tables(cfg.d_model // cfg.n_head, cfg.block_size)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(_init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale the residual projections by depth
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, idx: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        _, t = idx.shape
        start = 0 if state is None else int(state[0])
        if start + t > self.cfg.block_size:
            raise ValueError(
                f"sequence of {start + t} tokens exceeds the context window of {self.cfg.block_size}"
            )
        x = self.embed(idx)
        rope = None
        if self.pos_embed is not None:
            x = x + self.pos_embed(torch.arange(start, start + t, device=idx.device))
        else:
            cos, sin = self.get_buffer("rope_cos"), self.get_buffer("rope_sin")
            rope = (cos[start : start + t], sin[start : start + t])
        x = self.drop(x)
        caches = [None] * len(self.blocks) if state is None else state[1]
        new_caches = []
        for block, cache in zip(self.blocks, caches, strict=True):
            x, kv = block(x, rope, cache)
            new_caches.append(kv)
        logits = self.head(self.ln_f(x))
        return logits, (start + t, new_caches)


class LSTMModel(nn.Module):
    """The recurrent baseline: embedding -> stacked LSTM -> LayerNorm -> tied output. State: ``(h, c)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.d_model,
            cfg.d_model,
            num_layers=cfg.n_layer,
            batch_first=True,
            dropout=cfg.dropout if cfg.n_layer > 1 else 0.0,
        )
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, mean=0.0, std=0.02)

    def forward(self, idx: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x = self.drop(self.embed(idx))
        y, new_state = self.lstm(x, state)
        return self.head(self.ln_f(self.drop(y))), new_state


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model of ``cfg`` (seed torch first for a reproducible start)."""
    return Transformer(cfg) if cfg.arch == "transformer" else LSTMModel(cfg)
