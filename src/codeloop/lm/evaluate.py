"""Held-out cross-entropy, perplexity and bits per byte.

Bits per byte = total cross-entropy of the text in bits / its length in UTF-8 bytes. Unlike loss
per token it does not depend on the tokeniser, so a 4096-token model, a 1024-token model and the
unigram byte baseline all compare on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from codeloop.lm.data import document_stream, eval_windows
from codeloop.lm.tokenizer import Tokenizer

__all__ = ["evaluate_stream", "evaluate_texts"]

_EVAL_BATCH = 16


@torch.no_grad()
def evaluate_stream(
    model: nn.Module, tok: Tokenizer, stream: Tensor, *, block_size: int, max_tokens: int | None = None
) -> dict[str, Any]:
    """Loss over non-overlapping windows of ``stream`` (each window starts with no context)."""
    was_training = model.training
    model.eval()
    byte_len = torch.tensor(tok.byte_lengths, dtype=torch.long)
    nll, ntok, nbytes = 0.0, 0, 0
    batch_x: list[Tensor] = []
    batch_y: list[Tensor] = []

    def flush() -> None:
        nonlocal nll, ntok, nbytes
        if not batch_x:
            return
        x, y = torch.stack(batch_x), torch.stack(batch_y)
        logits, _ = model(x)
        nll += float(
            nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        )
        ntok += y.numel()
        nbytes += int(byte_len[y].sum())
        batch_x.clear()
        batch_y.clear()

    for x, y in eval_windows(stream, block_size, max_tokens):
        if batch_x and x.numel() != batch_x[0].numel():
            flush()
        batch_x.append(x)
        batch_y.append(y)
        if len(batch_x) == _EVAL_BATCH:
            flush()
    flush()
    if was_training:
        model.train()
    loss = nll / ntok if ntok else float("nan")
    return {
        "loss": loss,
        "perplexity": math.exp(loss) if ntok and loss < 700 else float("inf"),
        "bits_per_byte": nll / math.log(2) / nbytes if nbytes else float("nan"),
        "tokens": ntok,
        "bytes": nbytes,
    }


def evaluate_texts(
    model: nn.Module, tok: Tokenizer, texts: Sequence[str], *, block_size: int
) -> dict[str, Any]:
    """Every token of every text, each text starting a fresh context after ``<|endoftext|>``."""
    return evaluate_stream(model, tok, document_stream(tok, texts), block_size=block_size)
