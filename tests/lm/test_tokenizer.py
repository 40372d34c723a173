"""Tokenise: byte-level BPE round-trips any text and counts bytes exactly."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelError
from codeloop.lm.tokenizer import EOT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, Tokenizer, train_tokenizer

CODE = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n    def __init__(self, x):\n        self.x = x\n",
] * 50


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_tokenizer(CODE, 300)


@pytest.mark.parametrize(
    "text",
    [
        "def f(x):\n\treturn x  # ok\n",
        "naïve café 日本語 🐍 \u200b\x00\x7f\r\n",
        "    \n\n\n        deeply   indented\t\t",
        "",
        "\udcff lone surrogate escaped",
    ],
)
def test_any_text_round_trips(tok: Tokenizer, text: str) -> None:
    data = text.encode("utf-8", errors="surrogateescape") if "\udcff" in text else text.encode()
    text = data.decode("utf-8", errors="replace")
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode_bytes(ids) == text.encode()
    assert sum(tok.byte_lengths[i] for i in ids) == len(text.encode())


def test_merges_compress_code(tok: Tokenizer) -> None:
    text = CODE[0]
    assert len(tok.encode(text)) < len(text.encode()) / 2


def test_special_tokens_are_single_tokens_of_zero_bytes(tok: Tokenizer) -> None:
    prompt = f"{FIM_PREFIX}a = {FIM_SUFFIX}\n{FIM_MIDDLE}"
    ids = tok.encode(prompt)
    assert ids[0] == tok.token_id(FIM_PREFIX) and ids[-1] == tok.token_id(FIM_MIDDLE)
    assert tok.decode(ids) == prompt
    assert tok.byte_lengths[tok.eot_id] == 0
    assert tok.decode([tok.token_id(EOT)]) == EOT


def test_json_round_trip_and_bad_json(tok: Tokenizer) -> None:
    again = Tokenizer.from_json(tok.to_json())
    assert again.encode(CODE[1]) == tok.encode(CODE[1])
    with pytest.raises(ModelError, match="tokeniser"):
        Tokenizer.from_json("{not json")


def test_vocab_too_small_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="at least 260"):
        train_tokenizer(CODE, 100)
