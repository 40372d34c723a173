"""Fixtures of the harness tests: an isolated user directory, the problems, and a sandbox factory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codeloop.evals.problems import Problem, load_humaneval
from codeloop.evals.sessions import SessionFactory, sandbox_factory
from codeloop.llm import Sampling


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture(scope="session")
def problems() -> dict[str, Problem]:
    return load_humaneval()


@pytest.fixture(scope="session")
def open_session() -> SessionFactory:
    """Fresh real sandbox sessions, as the harness opens them."""
    return sandbox_factory(timeout=5.0)


@dataclass
class _Usage:
    completion_tokens: int = 7


@dataclass
class _Reply:
    text: str
    usage: _Usage = field(default_factory=_Usage)


class _Stream:
    """A scripted reply streamed a few characters at a time; records whether it was closed early."""

    def __init__(self, reply: _Reply) -> None:
        self._reply = reply
        self.sent = 0
        self.reply: _Reply | None = None

    def __iter__(self) -> Iterator[str]:
        text = self._reply.text
        while self.sent < len(text):
            chunk = text[self.sent : self.sent + 5]
            self.sent += len(chunk)
            yield chunk
        self.reply = self._reply

    def close(self) -> None:
        self.reply = _Reply(self._reply.text[: self.sent], _Usage(completion_tokens=self.sent // 5))


def _settings(sampling: Sampling | None, options: dict[str, Any]) -> dict[str, Any]:
    """The sampling options a call asked for, as a dict (stops only when some were given)."""
    chosen = Sampling.of(sampling, **options)
    settings: dict[str, Any] = {"max_tokens": chosen.max_tokens, "temperature": chosen.temperature, "seed": chosen.seed}
    if chosen.stop:
        settings["stop"] = list(chosen.stop)
    return settings


class ScriptedModel:
    """A fake model for loop-logic tests only: answers with the given replies, records every prompt."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []
        self.settings: list[dict[str, Any]] = []

    def _next(self, prompt: str, settings: dict[str, Any]) -> _Reply:
        self.prompts.append(prompt)
        self.settings.append(settings)
        if not self.replies:
            raise AssertionError(f"the model was asked more often than scripted; last prompt:\n{prompt}")
        return _Reply(self.replies.pop(0))

    def complete_text(self, prompt: str, sampling: Sampling | None = None, **options: Any) -> _Reply:
        return self._next(prompt, _settings(sampling, options))

    def stream_text(self, prompt: str, sampling: Sampling | None = None, **options: Any) -> _Stream:
        return _Stream(self._next(prompt, _settings(sampling, options)))

    def complete(self, messages: Iterable[dict[str, str]], sampling: Sampling | None = None, **options: Any) -> _Reply:
        return self._next("\n".join(f"[{m['role']}] {m['content']}" for m in messages), _settings(sampling, options))


@pytest.fixture
def scripted() -> type[ScriptedModel]:
    return ScriptedModel
