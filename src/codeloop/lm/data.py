"""Training batches (with fill-in-the-middle), held-out windows, and the unigram byte baseline.

Every document becomes ``<|endoftext|>`` + its tokens, and the documents are joined into one
stream. A training row is a random window of that stream; with probability ``fim_rate`` it is
rearranged into prefix-suffix-middle (PSM) order around two random cut points::

    <|fim_prefix|> A <|fim_suffix|> C <|fim_middle|> B <|endoftext|>

so the model learns to write the middle B given what comes before (A) and after (C) a cursor,
and to end it. The randomness comes from one ``torch.Generator`` whose state is checkpointed,
so a resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from codeloop.lm.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, Tokenizer

__all__ = ["BatchSampler", "UnigramBytes", "document_stream", "eval_windows"]


def document_stream(tok: Tokenizer, texts: Sequence[str]) -> Tensor:
    """All documents as one 1-D stream of token ids, each preceded by ``<|endoftext|>``."""
    ids: list[int] = []
    eot = tok.eot_id
    for doc in tok.encode_batch(texts):
        ids.append(eot)
        ids.extend(doc)
    return torch.tensor(ids, dtype=torch.long)


class BatchSampler:
    """Random ``(x, y)`` batches of ``block_size`` tokens from ``stream``, a ``fim_rate`` of them FIM."""

    def __init__(
        self, stream: Tensor, tok: Tokenizer, *, block_size: int, batch_size: int, fim_rate: float, seed: int
    ) -> None:
        if stream.numel() < block_size + 2:
            raise ValueError(
                f"the training text has {stream.numel()} tokens, fewer than one window of {block_size}"
            )
        self.stream = stream
        self.block_size = block_size
        self.batch_size = batch_size
        self.fim_rate = fim_rate
        self.special = (
            tok.token_id(FIM_PREFIX),
            tok.token_id(FIM_SUFFIX),
            tok.token_id(FIM_MIDDLE),
            tok.eot_id,
        )
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[Tensor, Tensor]:
        g, t = self.generator, self.block_size
        n = self.stream.numel()
        starts = torch.randint(0, n - t - 1, (self.batch_size,), generator=g)
        fim = torch.rand(self.batch_size, generator=g) < self.fim_rate
        cuts = torch.randint(0, t + 1 - 4 + 1, (self.batch_size, 2), generator=g).sort(dim=1).values
        rows = torch.empty(self.batch_size, t + 1, dtype=torch.long)
        pre, suf, mid, eot = self.special
        for r in range(self.batch_size):
            s = int(starts[r])
            if not fim[r]:
                rows[r] = self.stream[s : s + t + 1]
                continue
            raw = self.stream[s : s + t + 1 - 4]
            i, j = int(cuts[r, 0]), int(cuts[r, 1])
            rows[r] = torch.cat(
                [
                    raw.new_tensor([pre]),
                    raw[:i],
                    raw.new_tensor([suf]),
                    raw[j:],
                    raw.new_tensor([mid]),
                    raw[i:j],
                    raw.new_tensor([eot]),
                ]
            )
        return rows[:, :-1], rows[:, 1:]

    def state(self) -> Tensor:
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state)


def eval_windows(
    stream: Tensor, block_size: int, max_tokens: int | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """Non-overlapping windows covering ``stream``: every token after the first is predicted once.

    With ``max_tokens``, evenly spaced windows up to about that many predicted tokens (a fixed
    sample, the same at every evaluation).
    """
    n = stream.numel()
    starts = list(range(0, max(n - 1, 1), block_size))
    if max_tokens is not None and len(starts) * block_size > max_tokens:
        keep = max(1, max_tokens // block_size)
        step = len(starts) / keep
        starts = [starts[int(i * step)] for i in range(keep)]
    for s in starts:
        w = stream[s : s + block_size + 1]
        if w.numel() >= 2:
            yield w[:-1], w[1:]


@dataclass(frozen=True)
class UnigramBytes:
    """The baseline: each byte predicted from byte frequencies alone (add-one smoothed)."""

    counts: tuple[int, ...]  # 256 counts from the training text

    @classmethod
    def fit(cls, texts: Sequence[str]) -> UnigramBytes:
        counts = torch.zeros(256, dtype=torch.long)
        for text in texts:
            data = text.encode()
            if data:
                counts += torch.bincount(
                    torch.frombuffer(bytearray(data), dtype=torch.uint8).long(), minlength=256
                )
        return cls(tuple(int(c) for c in counts))

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        total = sum(self.counts) + 256
        bits = torch.tensor([-math.log2((c + 1) / total) for c in self.counts], dtype=torch.float64)
        nbits, nbytes = 0.0, 0
        for text in texts:
            data = text.encode()
            if data:
                hist = torch.bincount(
                    torch.frombuffer(bytearray(data), dtype=torch.uint8).long(), minlength=256
                )
                nbits += float((hist.double() * bits).sum())
                nbytes += len(data)
        return nbits / nbytes if nbytes else float("nan")
