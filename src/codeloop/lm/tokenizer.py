"""Tokenise: a byte-level BPE tokeniser trained on the corpus (Hugging Face ``tokenizers``).

Byte-level means the base alphabet is the 256 byte values, so any text, in any language or
encoding mistake, round-trips exactly: BPE merges only make common byte runs one token. Four
special tokens: the end-of-text separator (also the start of every document) and the three
fill-in-the-middle markers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from codeloop.errors import ModelError

__all__ = ["EOT", "FIM_MIDDLE", "FIM_PREFIX", "FIM_SUFFIX", "SPECIAL_TOKENS", "Tokenizer", "train_tokenizer"]

EOT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
SPECIAL_TOKENS = (EOT, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)
MIN_VOCAB = 256 + len(SPECIAL_TOKENS)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map, which ``tokenizers``' ByteLevel uses."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


_CHAR_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}


@dataclass
class Tokenizer:
    """A trained byte-level BPE tokeniser; ``to_json``/``from_json`` carry it in a checkpoint."""

    _tok: object  # tokenizers.Tokenizer (typed loosely: the extra may be missing at import)

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            tok = HFTokenizer.from_str(text)
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError(f"the checkpoint's tokeniser does not load: {e}") from e
        self = cls(tok)
        missing = [s for s in SPECIAL_TOKENS if tok.token_to_id(s) is None]
        if missing:
            raise ModelError(f"the checkpoint's tokeniser lacks the special tokens {missing}")
        return self

    def to_json(self) -> str:
        return str(self._hf.to_str())

    @property
    def _hf(self) -> Any:
        return self._tok

    @property
    def vocab_size(self) -> int:
        return int(self._hf.get_vocab_size())

    def token_id(self, token: str) -> int:
        i = self._hf.token_to_id(token)
        if i is None:
            raise ModelError(f"unknown token {token!r}")
        return int(i)

    @cached_property
    def eot_id(self) -> int:
        return self.token_id(EOT)

    @cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.token_id(s) for s in SPECIAL_TOKENS)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; the special-token strings in it become special tokens."""
        return list(self._hf.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self._hf.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; special tokens come out as their strings (so a FIM prompt round-trips)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes of ``ids`` (a token may hold part of a UTF-8 character)."""
        table = self.token_bytes
        return b"".join(table[i] for i in ids)

    @cached_property
    def token_bytes(self) -> list[bytes]:
        """Each token id's bytes: specials are their UTF-8 string, the rest map back through ByteLevel."""
        out: list[bytes] = [b""] * self.vocab_size
        specials = set(SPECIAL_TOKENS)
        for token, i in self._hf.get_vocab(with_added_tokens=True).items():
            if token in specials:
                out[i] = token.encode()
            else:
                out[i] = bytes(_CHAR_TO_BYTE[c] for c in token)
        return out

    @cached_property
    def byte_lengths(self) -> list[int]:
        """Bytes of text each token stands for (0 for specials): the denominator of bits per byte."""
        lengths = [len(b) for b in self.token_bytes]
        for i in self.special_ids:
            lengths[i] = 0
        return lengths


def train_tokenizer(texts: Iterator[str] | Sequence[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE with ``vocab_size`` tokens (the 256 bytes and the specials included)."""
    if vocab_size < MIN_VOCAB:
        raise ModelError(
            f"vocab size must be at least {MIN_VOCAB} (256 bytes + {len(SPECIAL_TOKENS)} specials), got {vocab_size}"
        )
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE())
    # GPT-2's pre-tokeniser splits words, numbers, punctuation and spaces so merges stay within them.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter(texts), trainer=trainer)
    return Tokenizer(tok)
