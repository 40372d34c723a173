"""Input validation and the small value types of the model layer."""

from __future__ import annotations

import pytest

from codeloop.errors import ModelError
from codeloop.llm.types import FinishReason, Timings, Usage, make_request

USER = [{"role": "user", "content": "hi"}]


def test_valid_chat_request_is_normalised() -> None:
    r = make_request(messages=USER, stop="\n\n", max_tokens=8, temperature=1, seed=3)
    assert r.messages == ({"role": "user", "content": "hi"},)
    assert r.prompt is None
    assert r.stop == ("\n\n",)
    assert r.temperature == 1.0
    assert isinstance(r.temperature, float)
    assert r.seed == 3
    assert r.stream is True


def test_raw_prompt_request() -> None:
    r = make_request(prompt="def f():", stop=["\ndef ", "\nclass "], stream=False)
    assert r.prompt == "def f():"
    assert r.messages is None
    assert r.stop == ("\ndef ", "\nclass ")
    assert r.stream is False


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"messages": "hello"}, "must be a list"),
        ({"messages": []}, "messages is empty"),
        ({"messages": [["user", "hi"]]}, "messages[0] must be a dict"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role 'robot'"),
        ({"messages": [{"role": "user", "content": 3}]}, "content must be a string"),
        ({"messages": [{"role": "user"}]}, "content must be a string"),
        ({"messages": USER, "prompt": "x"}, "exactly one of"),
        ({}, "exactly one of"),
        ({"prompt": b"bytes"}, "prompt must be a string"),
        ({"messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"messages": USER, "max_tokens": True}, "max_tokens"),
        ({"messages": USER, "max_tokens": "10"}, "max_tokens"),
        ({"messages": USER, "temperature": -0.1}, "temperature"),
        ({"messages": USER, "temperature": 2.5}, "temperature"),
        ({"messages": USER, "temperature": "hot"}, "temperature"),
        ({"messages": USER, "seed": -1}, "seed"),
        ({"messages": USER, "seed": 1.5}, "seed"),
        ({"messages": USER, "stop": [""]}, "stop sequences"),
        ({"messages": USER, "stop": [3]}, "stop sequences"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ModelError) as info:
        make_request(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_finish_reason_parsing() -> None:
    assert FinishReason.parse("stop") is FinishReason.STOP
    assert FinishReason.parse("length") is FinishReason.LENGTH
    assert FinishReason.parse("eos_or_whatever") is FinishReason.UNKNOWN
    assert FinishReason.parse(None) is FinishReason.UNKNOWN


def test_usage_total_and_decode_rate() -> None:
    assert Usage(10, 5).total_tokens == 15
    assert Usage(10, None).total_tokens is None
    t = Timings(time_to_first_token=1.0, total=3.0)
    assert t.decode_rate(11) == pytest.approx(5.0)
    assert t.decode_rate(1) is None
    assert Timings(time_to_first_token=None, total=1.0).decode_rate(5) is None
