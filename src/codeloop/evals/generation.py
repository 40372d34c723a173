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
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from codeloop.engine.generation import read_reply
from codeloop.engine.loop import Review, Verdict, drive
from codeloop.evals.checker import program_cell
from codeloop.evals.examples import extract_examples
from codeloop.evals.feedback import format_feedback
from codeloop.evals.problems import Problem
from codeloop.evals.prompts import COMPLETE_STOPS, FENCE_STOPS, Conversation, PromptStyle, definitions_end
from codeloop.evals.sessions import SessionFactory
from codeloop.evals.visible import VisibleReport, run_visible
from codeloop.llm.contract import TextModel
from codeloop.llm.types import Sampling
from codeloop.sandbox.tracing import TraceLimits

__all__ = ["Generated", "GenerationSettings", "Mode", "generate_sample"]


class Mode(StrEnum):
    PLAIN = "plain"
    REPAIR = "repair"
    TRACE = "trace"


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
    sampling = Sampling(max_tokens=settings.max_tokens, temperature=temp, seed=seed)
    if conversation.style is PromptStyle.CHAT:
        reply = model.complete(conversation.messages(), sampling)
        tokens = getattr(reply.usage, "completion_tokens", None) or 0
        return conversation.completion_from_reply(reply.text), int(tokens)
    stops: tuple[str, ...]
    if conversation.style in (PromptStyle.CHATML, PromptStyle.INSTRUCT):
        prompt, stops = conversation.chatml_prompt(), FENCE_STOPS
    else:
        prompt, stops = conversation.problem.prompt, COMPLETE_STOPS
    gen = read_reply(model.stream_text(prompt, sampling.but(stop=stops)), end=_end_of_definitions)
    return conversation.completion_from_reply(gen.text), gen.completion_tokens


def _end_of_definitions(text: str, piece: str) -> int | None:
    """The end rule of a function body's continuation: the first top-level line of demo code.

    The rest would be dropped anyway, costs generation time, and when cut off by the token limit
    would not parse (see ``definitions_end``; it can only change when a line is completed).
    """
    return definitions_end(text) if "\n" in piece else None


def _score(report: VisibleReport) -> tuple[int, int]:
    return (report.program_error is None, report.passed)


def _visible_text(report: VisibleReport) -> str:
    if report.program_error is not None:
        return "does not load"
    return f"{report.passed}/{max(report.total, len(report.outcomes))}"


class _VisibleRepair:
    """The "make the visible tests pass" workflow, driven by the engine's loop.

    generate: the first attempt (or the one given), later a repair of the last one, and when
    that merely repeats an earlier attempt a fresh, sampled one; review: stop when even that
    repeats; run: the visible examples in a fresh session; observe: show the model what failed;
    judge: done when all pass or the rounds are used up.
    """

    def __init__(
        self,
        problem: Problem,
        model: TextModel,
        settings: GenerationSettings,
        open_session: SessionFactory,
        seed: int | None,
        conversation: Conversation,
        first: str,
        attempts: int,
        tokens: int,
    ) -> None:
        self.problem, self.model, self.settings, self.open_session = problem, model, settings, open_session
        self.seed = seed
        self.conversation = conversation
        self.examples = extract_examples(problem)
        self.pending: str | None = first  # the next attempt to run, when already made
        self.attempts, self.tokens = attempts, tokens
        self.tried: list[str] = []
        self.best: tuple[tuple[int, int], str, VisibleReport] | None = None
        self.rounds = 0
        self.last: tuple[str, VisibleReport] | None = None  # the attempt run last, and its report

    def _ask(self, conversation: Conversation, seed: int | None, temperature: float | None = None) -> str:
        completion, used = _ask(self.model, conversation, self.settings, seed, temperature)
        self.attempts += 1
        self.tokens += used
        return completion

    def generate(self) -> str | None:
        if self.pending is not None:
            completion, self.pending = self.pending, None
            return completion
        completion = self._ask(self.conversation, self.seed)
        if completion in self.tried and self.last is not None:
            # Stuck: with its own code in view a small model copies it, even when sampling. Ask
            # afresh, with what went wrong but not the code, sampling (seeded: runs repeat).
            ran, report = self.last
            notes = format_feedback(report, program_cell(self.problem, ran), subject="It")
            fresh = Conversation.start(self.problem, self.settings.style, notes=notes)
            retry_seed = ((self.seed or 0) + 7919 * self.attempts) % (2**31)
            completion = self._ask(fresh, retry_seed, self.settings.retry_temperature)
        return completion

    def review(self, completion: str) -> Review:
        return Review.STOP if completion in self.tried else Review.RUN

    def run(self, completion: str) -> VisibleReport:
        report = run_visible(
            self.problem,
            completion,
            self.examples,
            self.open_session,
            timeout=self.settings.example_timeout,
            trace=self.settings.mode is Mode.TRACE,
            trace_limits=self.settings.trace_limits,
        )
        self.tried.append(completion)
        if self.best is None or _score(report) > self.best[0]:
            self.best = (_score(report), completion, report)
        self.last = (completion, report)
        return report

    def observe(self, completion: str, report: VisibleReport) -> None:
        if not self.finished(report):
            self.conversation.retry(completion, format_feedback(report, program_cell(self.problem, completion)))

    def judge(self, completion: str, report: VisibleReport) -> Verdict:
        if self.finished(report):
            return Verdict.DONE
        self.rounds += 1
        return Verdict.AGAIN

    def finished(self, report: VisibleReport) -> bool:
        return report.all_passed or self.rounds >= self.settings.rounds


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
    repair = _VisibleRepair(problem, model, settings, open_session, seed, conversation, completion, attempts, tokens)
    drive(repair)
    assert repair.best is not None
    best = repair.best
    return Generated(best[1], repair.attempts, _visible_text(best[2]), repair.tokens, time.perf_counter() - started)
