"""Fixtures of the harness tests: an isolated user directory, the problems, and a sandbox factory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codeloop.evals.problems import Problem, load_humaneval
from codeloop.evals.sessions import SessionFactory, sandbox_factory


@pytest.fixture(autouse=True)
def _codeloop_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("codeloop-home")
    monkeypatch.setenv("CODELOOP_HOME", str(home))
    yield home


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

    def complete_text(self, prompt: str, **settings: Any) -> _Reply:
        return self._next(prompt, settings)

    def complete(self, messages: Iterable[dict[str, str]], **settings: Any) -> _Reply:
        return self._next("\n".join(f"[{m['role']}] {m['content']}" for m in messages), settings)


@pytest.fixture
def scripted() -> type[ScriptedModel]:
    return ScriptedModel
