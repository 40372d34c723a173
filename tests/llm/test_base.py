"""The shared Model/ReplyStream logic, driven by a scripted fake backend (pure loop logic only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeloop.errors import ModelError
from codeloop.llm import FinishReason, Model, Reply, Request, Sampling, Usage
from codeloop.llm.types import Chunk


class ScriptedModel(Model):
    """Yields a fixed script of chunks and records the requests it was given."""

    name = "scripted"

    def __init__(self, script: list[Chunk]) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.closed = False

    def execute(self, request: Request) -> Iterator[Chunk]:
        self.requests.append(request)
        try:
            yield from self.script
        finally:
            self.closed = True


SCRIPT = [
    Chunk(text="Hel"),
    Chunk(text=""),  # backends may send empty keep-alive chunks: callers never see them
    Chunk(text="lo"),
    Chunk(finish_reason=FinishReason.STOP, usage=Usage(prompt_tokens=7, completion_tokens=2)),
]
USER = [{"role": "user", "content": "hi"}]


def test_stream_yields_text_and_keeps_the_reply() -> None:
    m = ScriptedModel(SCRIPT)
    s = m.stream(USER, stop=["\n"], max_tokens=5, temperature=0.5, seed=1)
    assert s.reply is None
    assert list(s) == ["Hel", "lo"]
    reply = s.reply
    assert isinstance(reply, Reply)
    assert reply.text == "Hello"
    assert reply.model == "scripted"
    assert reply.finish_reason is FinishReason.STOP
    assert reply.usage == Usage(prompt_tokens=7, completion_tokens=2)
    assert reply.timings.time_to_first_token is not None
    assert 0 <= reply.timings.time_to_first_token <= reply.timings.total
    (req,) = m.requests
    assert req.stream is True
    assert req.stop == ("\n",)
    assert req.max_tokens == 5
    assert req.seed == 1


def test_complete_asks_for_a_whole_reply() -> None:
    m = ScriptedModel(SCRIPT)
    reply = m.complete(tuple(USER))
    assert reply.text == "Hello"
    assert m.requests[0].stream is False
    assert m.requests[0].messages is not None


def test_raw_text_methods_send_a_prompt() -> None:
    m = ScriptedModel(SCRIPT)
    assert m.complete_text("def f():").text == "Hello"
    assert "".join(m.stream_text("x = ")) == "Hello"
    assert [r.prompt for r in m.requests] == ["def f():", "x = "]
    assert all(r.messages is None for r in m.requests)


def test_messages_may_be_any_iterable() -> None:
    m = ScriptedModel(SCRIPT)
    m.complete(msg for msg in USER)
    assert m.requests[0].messages == ({"role": "user", "content": "hi"},)


def test_no_text_means_no_time_to_first_token_and_unknown_finish() -> None:
    reply = ScriptedModel([Chunk()]).complete(USER)
    assert reply.text == ""
    assert reply.timings.time_to_first_token is None
    assert reply.finish_reason is FinishReason.UNKNOWN
    assert reply.usage == Usage()


def test_close_stops_the_backend() -> None:
    m = ScriptedModel(SCRIPT)
    with m.stream(USER) as s:
        assert next(s) == "Hel"
        assert not m.closed
    assert m.closed
    assert s.reply is not None
    assert s.reply.text == "Hel"
    assert s.reply.finish_reason is FinishReason.CANCELLED


def test_closing_keeps_the_usage_reported_so_far() -> None:
    script = [Chunk(text="a", usage=Usage(4, 1)), Chunk(text="b", usage=Usage(4, 2)), *SCRIPT]
    s = ScriptedModel(script).stream(USER)
    assert next(s) == "a"
    assert next(s) == "b"
    s.close()
    assert s.reply is not None
    assert s.reply.usage == Usage(4, 2)
    assert s.reply.text == "ab"


def test_closing_before_reading_leaves_no_reply() -> None:
    s = ScriptedModel(SCRIPT).stream(USER)
    s.close()
    assert s.reply is None


def test_finish_drains_the_rest() -> None:
    m = ScriptedModel(SCRIPT)
    s = m.stream(USER)
    assert next(s) == "Hel"
    assert s.finish().text == "Hello"
    assert list(s) == []


def test_validation_happens_before_the_backend_runs() -> None:
    m = ScriptedModel(SCRIPT)
    with pytest.raises(ModelError, match="max_tokens"):
        m.stream(USER, max_tokens=0)
    assert m.requests == []


def test_backend_errors_reach_the_caller() -> None:
    class Failing(Model):
        name = "failing"

        def execute(self, request: Request) -> Iterator[Chunk]:
            yield Chunk(text="partial")
            raise ModelError("server went away")

    s = Failing().stream(USER)
    assert next(s) == "partial"
    with pytest.raises(ModelError, match="server went away"):
        next(s)


def test_one_sampling_object_and_its_keyword_form() -> None:
    m = ScriptedModel(SCRIPT)
    greedy = Sampling(stop=("\n\n",), max_tokens=32)
    m.complete(USER, greedy)
    m.complete_text("x = ", greedy, temperature=0.5, seed=7)  # keywords change the object's fields
    "".join(m.stream(USER, max_tokens=8))
    first, second, third = (r.sampling for r in m.requests)
    assert first == greedy
    assert second == Sampling(stop=("\n\n",), max_tokens=32, temperature=0.5, seed=7)
    assert third == Sampling(max_tokens=8)
    assert m.requests[1].temperature == 0.5  # what a backend reads


def test_a_sampling_object_is_validated_like_keywords() -> None:
    m = ScriptedModel(SCRIPT)
    with pytest.raises(ModelError, match="max_tokens"):
        m.complete(USER, Sampling(max_tokens=0))
    with pytest.raises(ModelError, match="unknown sampling option"):
        m.complete(USER, top_p=0.9)  # type: ignore[call-arg]
    with pytest.raises(ModelError, match="must be a Sampling"):
        m.complete(USER, {"max_tokens": 8})  # type: ignore[arg-type]
    assert m.requests == []
    assert Sampling().but(stop="END").stop == ("END",)
