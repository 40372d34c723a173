"""The one model interface: backends implement ``execute``; callers use ``stream``/``complete``.

Like simonw/llm's ``Model.execute``, a backend only yields chunks. Everything callers rely on
(input validation, timings, assembling the reply) lives here once, so every backend behaves
the same.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Iterator
from types import TracebackType
from typing import Unpack

from codeloop.llm.types import (
    Chunk,
    FinishReason,
    Reply,
    Request,
    Sampling,
    SamplingOptions,
    Timings,
    Usage,
    make_request,
)

__all__ = ["Model", "ReplyStream"]


class ReplyStream(Iterator[str]):
    """Iterate for text chunks as they are generated; ``reply`` holds the full reply at the end.

    Closing the stream early (``close()``, leaving a ``with`` block, or dropping it) stops
    generation and frees the backend for the next call.
    """

    def __init__(self, model: Model, chunks: Generator[Chunk, None, None]) -> None:
        self._model = model  # its name is read at the end: a server backend may learn it mid-call
        self._chunks = chunks
        self._parts: list[str] = []
        self._start: float | None = None
        self._first: float | None = None
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._reply: Reply | None = None

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> str:
        if self._reply is not None:
            raise StopIteration
        if self._start is None:
            self._start = time.perf_counter()
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._reply = self._build_reply(time.perf_counter())
                raise
            if chunk.finish_reason is not None:
                self._finish = chunk.finish_reason
            if chunk.usage is not None:
                self._usage = chunk.usage
            if chunk.text:
                if self._first is None:
                    self._first = time.perf_counter()
                self._parts.append(chunk.text)
                return chunk.text

    def _build_reply(self, end: float) -> Reply:
        assert self._start is not None
        ttft = None if self._first is None else self._first - self._start
        return Reply(
            text="".join(self._parts),
            usage=self._usage or Usage(),
            timings=Timings(time_to_first_token=ttft, total=end - self._start),
            finish_reason=self._finish or FinishReason.UNKNOWN,
            model=self._model.name,
        )

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def reply(self) -> Reply | None:
        """The reply once the stream is used up or closed (then ``finish_reason`` is CANCELLED);
        ``None`` while it runs."""
        return self._reply

    def finish(self) -> Reply:
        """Consume whatever is left and return the reply."""
        for _ in self:
            pass
        assert self._reply is not None
        return self._reply

    def close(self) -> None:
        """Stop generating now; the backend is free again. ``reply`` then holds what came so far."""
        self._chunks.close()
        if self._reply is None and self._start is not None:
            self._finish = self._finish or FinishReason.CANCELLED
            self._reply = self._build_reply(time.perf_counter())

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Model(ABC):
    """A model backend. Subclasses implement :meth:`execute`; everything else is shared."""

    #: the canonical name this model was resolved to, e.g. ``"qwen-coder-0.5b"``, ``"openai:gpt-4o"``
    name: str

    @abstractmethod
    def execute(self, request: Request) -> Iterator[Chunk]:
        """Yield the chunks of one generation; raise :class:`~codeloop.errors.ModelError` on failure."""

    def stream(
        self, messages: Iterable[object], sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> ReplyStream:
        """Chat: yield text chunks of the reply to ``messages`` (``[{"role", "content"}, ...]``).

        ``sampling`` (a :class:`Sampling`) and/or its keyword form (``max_tokens=16``) say how.
        """
        request = make_request(messages=_as_list(messages), sampling=sampling, **options)
        return ReplyStream(self, self._chunks(request))

    def complete(
        self, messages: Iterable[object], sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> Reply:
        """Chat: the whole reply to ``messages``, with usage, timings and finish reason."""
        request = make_request(messages=_as_list(messages), sampling=sampling, stream=False, **options)
        return ReplyStream(self, self._chunks(request)).finish()

    def stream_text(
        self, prompt: str, sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> ReplyStream:
        """Raw completion: continue ``prompt`` as-is, no chat template (code completion, plain evals)."""
        request = make_request(prompt=prompt, sampling=sampling, **options)
        return ReplyStream(self, self._chunks(request))

    def complete_text(
        self, prompt: str, sampling: Sampling | None = None, **options: Unpack[SamplingOptions]
    ) -> Reply:
        """Raw completion of ``prompt`` (no chat template), returned whole."""
        request = make_request(prompt=prompt, sampling=sampling, stream=False, **options)
        return ReplyStream(self, self._chunks(request)).finish()

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what this handle holds (connections); shared embedded weights stay loaded."""

    def _chunks(self, request: Request) -> Generator[Chunk, None, None]:
        yield from self.execute(request)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _as_list(messages: Iterable[object]) -> object:
    # Accept any iterable of messages (a tuple, a generator); validation happens in make_request.
    if isinstance(messages, list | tuple | str | bytes) or not isinstance(messages, Iterable):
        return messages
    return list(messages)
