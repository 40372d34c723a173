"""What a benchmark is to the harness: problems, prompts, programs, checks and visible examples.

The runner, the checker and the report know nothing of any one benchmark: they ask a
:class:`Benchmark`. A benchmark maps its data onto :class:`~codeloop.evals.problems.Problem`
(the text before the model's part, the text after it, the hidden test and the entry point it
calls), builds what the model is shown and turns the reply into a completion. The checker runs
``prompt + completion + suffix`` and then ``test`` followed by ``check(entry_point)`` in a forked,
jailed child (``checker.py``), so a new benchmark whose tests have that shape is one file: a
class with :meth:`~Benchmark.load` and :meth:`~Benchmark.generate`, registered in
``benchmarks/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from codeloop.evals.checker import check_program, program_cell
from codeloop.evals.examples import Example, extract_examples
from codeloop.evals.generation import Generated, GenerationSettings, Mode, TextModel
from codeloop.evals.problems import Problem
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.sessions import SessionFactory

__all__ = ["Benchmark", "FunctionBenchmark", "PromptText"]

#: What a model is shown: a raw prompt, or chat messages (``[{"role", "content"}, ...]``).
PromptText = str | list[dict[str, str]]


@runtime_checkable
class Benchmark(Protocol):
    """One benchmark, as the runner and the checker use it."""

    @property
    def name(self) -> str:
        """Its identity in samples' ``.meta.json``, reports and default file names (``humaneval``)."""
        ...

    @property
    def modes(self) -> Sequence[Mode]:
        """The generation modes it supports (plain at least)."""
        ...

    def load(self) -> dict[str, Problem]:
        """All problems by task id, in the benchmark's order."""
        ...

    def resolve_style(self, requested: str, model_name: str) -> PromptStyle:
        """The prompt style a run uses (``requested`` may be ``auto``); a clear error if unsupported."""
        ...

    def prompt(self, problem: Problem, model: object, settings: GenerationSettings) -> PromptText:
        """What ``model`` is shown first for ``problem`` under ``settings`` (its prompt style)."""
        ...

    def generate(
        self,
        problem: Problem,
        model: TextModel,
        settings: GenerationSettings,
        open_session: SessionFactory | None,
        *,
        seed: int | None = None,
        first: str | None = None,
    ) -> Generated:
        """One sample for ``problem``: ask the model (and repair, in repair modes), return the completion."""
        ...

    def program(self, problem: Problem, completion: str) -> str:
        """The program a completion makes, as the checker runs it."""
        ...

    def test(self, problem: Problem, token: str) -> str:
        """The hidden test cell run after the program; it evaluates to ``token`` when the test passed."""
        ...

    def examples(self, problem: Problem) -> list[Example]:
        """The visible examples (from the problem's docstring) the repair modes may run."""
        ...

    def describe(self) -> dict[str, Any]:
        """Settings of the benchmark itself (its data file, its variant) for the samples' meta."""
        ...


class FunctionBenchmark:
    """The shared part of benchmarks whose problems are one Python function checked by ``check(f)``.

    Subclasses set ``name`` and ``modes`` and implement ``load``, ``resolve_style``, ``prompt``
    and ``generate``. The program and test are the checker's (``prompt + completion + suffix``;
    ``test`` then ``check(entry_point)``), the visible examples those of the docstring.
    """

    name: str = ""
    modes: Sequence[Mode] = (Mode.PLAIN,)

    def program(self, problem: Problem, completion: str) -> str:
        return program_cell(problem, completion)

    def test(self, problem: Problem, token: str) -> str:
        return check_program(problem, token)

    def examples(self, problem: Problem) -> list[Example]:
        return extract_examples(problem)

    def describe(self) -> dict[str, Any]:
        return {}
