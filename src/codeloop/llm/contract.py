"""The model contract as its consumers see it: what a chat model and a text model offer.

:class:`~codeloop.llm.Model` satisfies both protocols; the loop engine, the agent, the eval
harness and the workflows type against these (never against a backend class), so a test can
drive them with any object of the same shape. How to sample is one :class:`Sampling` object,
passed positionally or as its keyword form (``max_tokens=16``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, Unpack

from codeloop.llm.types import Reply, Sampling, SamplingOptions

__all__ = ["ChatModel", "ReplyStreamLike", "TextModel"]


class ReplyStreamLike(Protocol):
    """A reply being generated: iterate for text; ``close()`` stops generating; ``reply`` at the end."""

    def __iter__(self) -> Iterator[str]: ...
    def __next__(self) -> str: ...
    def close(self) -> None: ...
    @property
    def reply(self) -> Reply | None: ...


class ChatModel(Protocol):
    """A model that answers chat messages (``[{"role": ..., "content": ...}, ...]``)."""

    @property
    def name(self) -> str: ...

    def stream(
        self, messages: Iterable[object], sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> ReplyStreamLike: ...

    def complete(
        self, messages: Iterable[object], sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> Reply: ...


class TextModel(ChatModel, Protocol):
    """A chat model that also continues a raw prompt (no chat template): completion, fill-in-the-middle."""

    def stream_text(
        self, prompt: str, sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> ReplyStreamLike: ...

    def complete_text(
        self, prompt: str, sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> Reply: ...
