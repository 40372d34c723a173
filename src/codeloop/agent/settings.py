"""Knobs of the loop: hard limits, and the strategy used to get the most out of small models."""

from __future__ import annotations

from dataclasses import dataclass

from codeloop.errors import ConfigError

__all__ = ["Limits", "Strategy"]


@dataclass(frozen=True)
class Limits:
    """When the loop gives up: cells run, completion tokens spent, wall-clock seconds."""

    max_steps: int = 6  # cells run per task (a repair is a step)
    max_tokens: int = 6000  # completion tokens over the whole task
    max_seconds: float = 300.0  # wall time for the whole task
    cell_timeout: float = 30.0  # wall time per cell (never beyond what is left of max_seconds)
    reply_tokens: int = 512  # completion tokens per model reply

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_tokens", "reply_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_seconds", "cell_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class Strategy:
    """How the loop helps the model. ``Strategy.baseline()`` turns every aid off, for comparison."""

    few_shot: bool = True  # worked examples as prior chat turns
    select_examples: bool = True  # show the library example closest to the task, not a fixed one
    restate_task: bool = True  # repeat "write a program that computes this" right after the task
    require_code: bool = True  # one nudge to write code when the first reply guesses without it
    probe_value: bool = True  # nothing printed: read the last assigned variable instead of asking again
    ground_answer: bool = True  # answer from the executed output when the model's words contradict it
    review_code: bool = True  # don't run code that only prints literals, or repeats the code that just failed
    focus_repairs: bool = True  # show only the latest failure, hint missing module names, restart on repeats
    votes: int = 1  # programs sampled on the first code step (self-consistency); 1 = off
    vote_temperature: float = 0.7
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.votes, bool) or not isinstance(self.votes, int) or not 1 <= self.votes <= 16:
            raise ConfigError(f"votes must be an integer from 1 to 16, got {self.votes!r}")
        if not 0.0 <= self.vote_temperature <= 2.0:
            raise ConfigError(f"vote_temperature must be between 0 and 2, got {self.vote_temperature!r}")

    @classmethod
    def baseline(cls) -> Strategy:
        """The naive loop: system prompt, code, output, answer; none of the aids above."""
        return cls(
            few_shot=False,
            select_examples=False,
            restate_task=False,
            require_code=False,
            probe_value=False,
            ground_answer=False,
            review_code=False,
            votes=1,
        )
