"""Generate one sample for one problem: plain, or repaired against the docstring's examples.

* ``plain``: ask once.
* ``repair``: run the attempt on the visible examples in a fresh sandbox session; while some
  fail, show the model what failed and ask again, up to ``rounds`` times.
* ``trace``: as repair, and the feedback also holds the first failing example's line-by-line
  trace (variable values after each line, bounded), in the spirit of LDB.

The hidden tests are never run here and never shown. The sample kept is the attempt that did
best on the visible examples (the earliest among equals), so a repair can never make the
visible score worse.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from codeloop.evals.checker import program_cell
from codeloop.evals.examples import extract_examples
from codeloop.evals.feedback import format_feedback
from codeloop.evals.problems import Problem
from codeloop.evals.prompts import COMPLETE_STOPS, FENCE_STOPS, Conversation, PromptStyle, definitions_end
from codeloop.evals.sessions import SessionFactory
from codeloop.evals.visible import VisibleReport, run_visible
from codeloop.llm.repetition import degenerate_tail
from codeloop.sandbox.tracing import TraceLimits

__all__ = ["Generated", "GenerationSettings", "Mode", "TextModel", "generate_sample"]


class Mode(StrEnum):
    PLAIN = "plain"
    REPAIR = "repair"
    TRACE = "trace"


class _ReplyLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def usage(self) -> Any: ...


class _StreamLike(Protocol):
    def __iter__(self) -> Iterator[str]: ...
    def close(self) -> None: ...
    @property
    def reply(self) -> _ReplyLike | None: ...


class TextModel(Protocol):
    """What generation needs of a model (``codeloop.llm.Model`` has these methods)."""

    def stream_text(
        self,
        prompt: str,
        *,
        stop: str | Iterable[str] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> _StreamLike: ...

    def complete(
        self,
        messages: Iterable[object],
        *,
        stop: str | Iterable[str] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> _ReplyLike: ...

    def complete_text(
        self,
        prompt: str,
        *,
        stop: str | Iterable[str] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> _ReplyLike: ...


@dataclass(frozen=True)
class GenerationSettings:
    """How samples are generated; recorded with the samples file so a resume uses the same."""

    mode: Mode = Mode.PLAIN
    style: PromptStyle = PromptStyle.CHATML
    rounds: int = 3
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    example_timeout: float = 3.0
    retry_temperature: float = 0.8  # for a repair attempt that merely repeated an earlier one
    trace_limits: TraceLimits = field(default_factory=TraceLimits)

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mode": str(self.mode),
            "prompt_style": str(self.style),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        if self.mode is not Mode.PLAIN:
            data["rounds"] = self.rounds
            data["retry_temperature"] = self.retry_temperature
        return data


@dataclass(frozen=True)
class Generated:
    """One generated sample and how it came about."""

    completion: str
    attempts: int  # model calls made
    visible: str | None  # "passed/total" of the kept attempt on the visible examples; None in plain mode
    tokens: int
    seconds: float

    def record_fields(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "visible": self.visible, "tokens": self.tokens, "seconds": round(self.seconds, 2)}


def _ask(
    model: TextModel,
    conversation: Conversation,
    settings: GenerationSettings,
    seed: int | None,
    temperature: float | None = None,
) -> tuple[str, int]:
    temp = settings.temperature if temperature is None else temperature
    kwargs: dict[str, Any] = {"max_tokens": settings.max_tokens, "temperature": temp, "seed": seed}
    if conversation.style is PromptStyle.CHAT:
        reply = model.complete(conversation.messages(), **kwargs)
        tokens = getattr(reply.usage, "completion_tokens", None) or 0
        return conversation.completion_from_reply(reply.text), int(tokens)
    stops: tuple[str, ...]
    if conversation.style in (PromptStyle.CHATML, PromptStyle.INSTRUCT):
        prompt, stops = conversation.chatml_prompt(), FENCE_STOPS
    else:
        prompt, stops = conversation.problem.prompt, COMPLETE_STOPS
    text, tokens = _continue_body(model.stream_text(prompt, stop=list(stops), **kwargs))
    return conversation.completion_from_reply(text), tokens


def _continue_body(stream: _StreamLike) -> tuple[str, int]:
    """Read a continuation of a function body until the model leaves the definitions.

    Stops at the first top-level line of demo code (see ``definitions_end``): the rest would be
    dropped anyway, costs generation time, and when cut off by the token limit would not parse.
    """
    text, chunks, cut = "", 0, None
    try:
        for chunk in stream:
            text += chunk
            chunks += 1
            if "\n" in chunk:
                cut = definitions_end(text)
                if cut is not None:
                    break
            if ("\n" in chunk or chunks % 16 == 0) and degenerate_tail(text):
                break  # looping: the attempt is what it is, without the rest of the budget
    finally:
        stream.close()
    reply = stream.reply
    tokens = getattr(getattr(reply, "usage", None), "completion_tokens", None) or chunks
    return (text if cut is None else text[:cut]), int(tokens)


def _score(report: VisibleReport) -> tuple[int, int]:
    return (report.program_error is None, report.passed)


def _visible_text(report: VisibleReport) -> str:
    if report.program_error is not None:
        return "does not load"
    return f"{report.passed}/{max(report.total, len(report.outcomes))}"


def generate_sample(
    problem: Problem,
    model: TextModel,
    settings: GenerationSettings,
    open_session: SessionFactory | None = None,
    *,
    seed: int | None = None,
    first: str | None = None,
) -> Generated:
    """Make one completion for ``problem`` in the settings' mode.

    ``first`` is the first attempt, already made (a plain run's sample with the same model and
    settings): the first round of repair is exactly a plain generation, so comparing modes need
    not pay for it twice.
    """
    started = time.perf_counter()
    conversation = Conversation.start(problem, settings.style)
    if first is None:
        completion, tokens = _ask(model, conversation, settings, seed)
        attempts = 1
    else:
        completion, tokens, attempts = first, 0, 0
    if settings.mode is Mode.PLAIN:
        return Generated(completion, attempts, None, tokens, time.perf_counter() - started)
    if open_session is None:
        raise ValueError(f"{settings.mode} mode runs the examples in a sandbox: pass open_session")
    if settings.style is PromptStyle.COMPLETE:
        raise ValueError("repair needs a conversation: use the chatml or chat prompt style")
    examples = extract_examples(problem)
    tried: list[str] = []
    best: tuple[tuple[int, int], str, VisibleReport] | None = None
    rounds = 0
    while True:
        report = run_visible(
            problem,
            completion,
            examples,
            open_session,
            timeout=settings.example_timeout,
            trace=settings.mode is Mode.TRACE,
            trace_limits=settings.trace_limits,
        )
        tried.append(completion)
        if best is None or _score(report) > best[0]:
            best = (_score(report), completion, report)
        if report.all_passed or rounds >= settings.rounds:
            break
        rounds += 1
        program = program_cell(problem, completion)
        conversation.retry(completion, format_feedback(report, program))
        completion, used = _ask(model, conversation, settings, seed)
        attempts += 1
        tokens += used
        if completion in tried:
            # Stuck: with its own code in view a small model copies it, even when sampling. Ask
            # afresh, with what went wrong but not the code, sampling (seeded: runs repeat).
            notes = format_feedback(report, program, subject="It")
            fresh = Conversation.start(problem, settings.style, notes=notes)
            retry_seed = ((seed or 0) + 7919 * attempts) % (2**31)
            completion, used = _ask(model, fresh, settings, retry_seed, settings.retry_temperature)
            attempts += 1
            tokens += used
            if completion in tried:
                break
    return Generated(best[1], attempts, _visible_text(best[2]), tokens, time.perf_counter() - started)

