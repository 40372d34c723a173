"""Agent tests: a scripted fake model (loop logic only), the real sandbox, an isolated user dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeloop.llm import Sampling
from codeloop.sandbox import Sandbox

Script = str | BaseException | Callable[[list[dict[str, str]]], str]


class FakeModel:
    """Replies from a script, streamed in small chunks; records every call and how far it was read."""

    name = "fake-model"

    def __init__(self, *replies: Script, chunk: int = 4) -> None:
        self.replies = list(replies)
        self.chunk = chunk
        self.calls: list[dict[str, Any]] = []

    def stream(self, messages: Any, sampling: Sampling | None = None, **options: Any) -> Iterator[str]:
        sampling = Sampling.of(sampling, **options)
        call: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "stop": sampling.stop,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "seed": sampling.seed,
            "sent": "",
            "closed_early": False,
        }
        self.calls.append(call)
        if not self.replies:
            raise AssertionError("the fake model ran out of scripted replies")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        text = reply(call["messages"]) if callable(reply) else reply
        return self._chunks(text, call)

    def _chunks(self, text: str, call: dict[str, Any]) -> Iterator[str]:
        try:
            for i in range(0, len(text), self.chunk):
                piece = text[i : i + self.chunk]
                call["sent"] += piece
                yield piece
        except GeneratorExit:
            call["closed_early"] = True
            raise


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(timeout=10.0)
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture
def fake_model() -> type[FakeModel]:
    return FakeModel
