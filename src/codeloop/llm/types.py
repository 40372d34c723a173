"""Plain data of the model layer: messages, requests, chunks and replies.

Backends yield :class:`Chunk` objects; the base class turns them into text for callers and
into one :class:`Reply` with usage and timings at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypedDict, Unpack

from codeloop.errors import ModelError

__all__ = [
    "ROLES",
    "Chunk",
    "FinishReason",
    "Message",
    "Reply",
    "Request",
    "Sampling",
    "SamplingOptions",
    "Timings",
    "Usage",
    "make_request",
]

ROLES = ("system", "user", "assistant", "tool")


class Message(TypedDict):
    """One chat message, the same shape as OpenAI's: ``{"role": "user", "content": "..."}``."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class FinishReason(StrEnum):
    """Why generation ended."""

    STOP = "stop"  # end-of-turn token or a stop sequence
    LENGTH = "length"  # max_tokens or the context window
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"
    CANCELLED = "cancelled"  # the caller closed the stream before the end
    UNKNOWN = "unknown"  # the backend named a reason we do not know

    @classmethod
    def parse(cls, raw: str | None) -> FinishReason:
        """Map a backend's finish reason string onto the enum (``None`` -> UNKNOWN)."""
        if raw is None:
            return cls.UNKNOWN
        try:
            return cls(raw)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class Usage:
    """Token counts of one call; ``None`` where the backend did not report them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # prompt tokens served from a cache (the embedded KV cache, or a server's prompt cache)
    cached_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds as the caller saw them."""

    time_to_first_token: float | None  # None when no text came back at all
    total: float

    def decode_rate(self, completion_tokens: int | None) -> float | None:
        """Tokens per second after the first token (the decode speed), if measurable."""
        if completion_tokens is None or completion_tokens < 2 or self.time_to_first_token is None:
            return None
        span = self.total - self.time_to_first_token
        return (completion_tokens - 1) / span if span > 0 else None


@dataclass(frozen=True)
class Reply:
    """A finished model reply."""

    text: str
    usage: Usage
    timings: Timings
    finish_reason: FinishReason
    model: str


@dataclass(frozen=True)
class Chunk:
    """What a backend yields: some text, and on the last chunk(s) the finish reason and usage.

    A backend may attach the usage so far to any chunk, so a reply cut short still counts tokens.
    """

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


class SamplingOptions(TypedDict, total=False):
    """The keyword form of :class:`Sampling`, accepted by every ``Model`` call (``max_tokens=16``)."""

    stop: str | Iterable[str] | None
    max_tokens: int
    temperature: float
    seed: int | None


@dataclass(frozen=True)
class Sampling:
    """How to sample one reply: the one options object of every model call.

    ``stop`` ends the reply at any of these strings; ``max_tokens`` bounds its length;
    ``temperature`` 0 is greedy; ``seed`` makes sampling repeatable (None: a fresh one).
    Build it with :meth:`of` to validate caller input (bad values raise :class:`ModelError`).
    """

    stop: tuple[str, ...] = ()
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None

    @classmethod
    def of(cls, base: Sampling | None = None, **options: Unpack[SamplingOptions]) -> Sampling:
        """``base`` (default: the defaults) with ``options`` (the keyword form) applied, validated."""
        unknown = set(options) - set(SamplingOptions.__annotations__)
        if unknown:
            raise ModelError(f"unknown sampling option(s): {', '.join(sorted(unknown))}")
        start = base if base is not None else cls()
        if not isinstance(start, Sampling):
            raise ModelError(f"sampling must be a Sampling, got {type(start).__name__}")
        stop = _check_stop(options["stop"] if "stop" in options else start.stop)
        max_tokens = options.get("max_tokens", start.max_tokens)
        temperature = options.get("temperature", start.temperature)
        seed = options.get("seed", start.seed)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ModelError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0 <= temperature <= 2
        ):
            raise ModelError(f"temperature must be a number between 0 and 2, got {temperature!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ModelError(f"seed must be a non-negative integer or None, got {seed!r}")
        return cls(stop=stop, max_tokens=max_tokens, temperature=float(temperature), seed=seed)

    def but(self, **changes: Unpack[SamplingOptions]) -> Sampling:
        """A copy with some fields changed (validated like :meth:`of`)."""
        return Sampling.of(self, **changes)


@dataclass(frozen=True)
class Request:
    """One generation request: either chat ``messages`` or a raw ``prompt`` (no chat template).

    Backends read the sampling options through the shortcuts ``stop``, ``max_tokens``,
    ``temperature`` and ``seed``.
    """

    messages: tuple[Message, ...] | None
    prompt: str | None
    sampling: Sampling = Sampling()
    stream: bool = True  # a hint: True when the caller consumes chunks as they come

    @property
    def stop(self) -> tuple[str, ...]:
        return self.sampling.stop

    @property
    def max_tokens(self) -> int:
        return self.sampling.max_tokens

    @property
    def temperature(self) -> float:
        return self.sampling.temperature

    @property
    def seed(self) -> int | None:
        return self.sampling.seed


def _check_messages(messages: object) -> tuple[Message, ...]:
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ModelError(
            f'messages must be a list of {{"role": ..., "content": ...}} dicts, got {type(messages).__name__}'
        )
    if not messages:
        raise ModelError("messages is empty: give at least one message")
    checked: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ModelError(
                f"messages[{i}] must be a dict with 'role' and 'content', got {type(m).__name__}"
            )
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ModelError(f"messages[{i}] has role {role!r}: expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ModelError(f"messages[{i}] content must be a string, got {type(content).__name__}")
        checked.append(Message(role=role, content=content))
    return tuple(checked)


def _check_stop(stop: str | Iterable[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    out = tuple(stop)
    for s in out:
        if not isinstance(s, str) or not s:
            raise ModelError(f"stop sequences must be non-empty strings, got {s!r}")
    return out


def make_request(
    *,
    messages: object = None,
    prompt: object = None,
    sampling: Sampling | None = None,
    stream: bool = True,
    **options: Unpack[SamplingOptions],
) -> Request:
    """Validate caller input into a :class:`Request`; bad input raises :class:`ModelError`.

    ``options`` is the keyword form of :class:`Sampling` (``max_tokens=16``), applied over ``sampling``.
    """
    if (messages is None) == (prompt is None):
        raise ModelError("give exactly one of messages or prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise ModelError(f"prompt must be a string, got {type(prompt).__name__}")
    return Request(
        messages=_check_messages(messages) if messages is not None else None,
        prompt=prompt,
        sampling=Sampling.of(sampling, **options),
        stream=stream,
    )
