"""Sample programs for tasks with the model, run them in the sandbox, keep the verified ones.

The prompt is exactly the agent's first prompt for the task (system prompt, worked example,
task), so the examples teach the model the job it does in ``codeloop run``. A reply counts
only up to the end of its first Python block (where the agent stops generating and runs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

from codeloop.agent.checks import normalise_code
from codeloop.agent.loop import Agent
from codeloop.selftrain.functions import FunctionTask
from codeloop.selftrain.tasks import Task
from codeloop.selftrain.verify import output_matches
from codeloop.text import cut_after_first_block, parse_reply

__all__ = ["FENCE", "Sample", "function_prompt", "sample_function_task", "sample_task", "select_examples"]


@dataclass
class Sample:
    """One sampled reply for one task and what running its code showed."""

    task_id: str
    index: int
    reply: str  # up to the end of the first Python block
    code: str | None
    status: str  # the sandbox status, or "no-code"
    stdout: str
    verified: bool
    tokens: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_task(
    agent: Agent,
    task: Task,
    *,
    k: int,
    temperature: float,
    seed: int,
    max_tokens: int = 512,
    run_code: Callable[[str], tuple[str, str]],
    judge: Callable[[str], bool] | None = None,
) -> list[Sample]:
    """``k`` replies for ``task`` at ``temperature``, each run with ``run_code(code) -> (status, stdout)``.

    A sample that ran cleanly is verified when ``judge(stdout)`` holds (default: its last printed
    line states the task's computed answer).
    """
    if judge is None:

        def judge(stdout: str) -> bool:
            return output_matches(stdout, task.answer, task.check)

    messages = agent.initial_messages(task.task)
    samples: list[Sample] = []
    for i in range(k):
        start = time.perf_counter()
        reply = agent.model.complete(
            messages, max_tokens=max_tokens, temperature=temperature, seed=seed * 1000 + i, stop=None
        )
        text = cut_after_first_block(reply.text) or reply.text
        code = parse_reply(text).code
        if code is None:
            status, stdout = "no-code", ""
        else:
            status, stdout = run_code(code)
        verified = status == "ok" and judge(stdout)
        samples.append(
            Sample(
                task.id, i, text, code, status, stdout[-2000:], verified,
                int(reply.usage.completion_tokens or 0), round(time.perf_counter() - start, 3),
            )
        )
    return samples


#: what ends a function body in the plain HumanEval format: the closing fence (a stop string there)
FENCE = "\n```"


def _function_settings(model: Any, temperature: float, max_tokens: int) -> Any:
    from codeloop.evals.benchmarks.humaneval import HumanEval
    from codeloop.evals.generation import GenerationSettings, Mode
    from codeloop.evals.prompts import PromptStyle

    style = HumanEval().resolve_style("auto", str(getattr(model, "name", "")))
    if style is not PromptStyle.CHATML:
        raise ValueError(f"function tasks use the ChatML prompt of plain HumanEval; {model.name} gets {style}")
    return GenerationSettings(mode=Mode.PLAIN, style=style, max_tokens=max_tokens, temperature=temperature)


def function_prompt(model: Any, task: FunctionTask) -> str:
    """The exact text ``codeloop eval humaneval --mode plain`` shows ``model`` for a problem like ``task``."""
    from codeloop.evals.benchmarks.humaneval import HumanEval

    prompt = HumanEval().prompt(task.problem(), model, _function_settings(model, 0.0, 512))
    assert isinstance(prompt, str)
    return prompt


def sample_function_task(
    model: Any,
    task: FunctionTask,
    *,
    k: int,
    temperature: float,
    seed: int,
    open_session: Callable[[], AbstractContextManager[Any]],
    timeout: float,
    max_tokens: int = 512,
) -> list[Sample]:
    """``k`` completions of ``task`` made as plain HumanEval makes them, each checked on the hidden tests.

    Generation and the completion's clean-up are the HumanEval benchmark's own
    (``HumanEval.generate`` in plain mode), the check is the eval checker's (``check_sample``: the
    program, then ``check(entry_point)`` in a fresh session). ``reply`` is what the model should
    write after the prompt (the completion, then the closing fence); ``code`` the whole program.
    """
    from codeloop.evals.benchmarks.humaneval import HumanEval
    from codeloop.evals.checker import check_sample, program_cell
    from codeloop.evals.samples import Sample as EvalSample

    bench = HumanEval()
    settings = _function_settings(model, temperature, max_tokens)
    problem = task.problem()
    samples: list[Sample] = []
    for i in range(k):
        start = time.perf_counter()
        generated = bench.generate(problem, model, settings, None, seed=seed * 1000 + i)
        result = check_sample(EvalSample(task.id, i, generated.completion), problem, open_session, timeout=timeout)
        samples.append(
            Sample(
                task.id, i, generated.completion.rstrip("\n") + FENCE, program_cell(problem, generated.completion),
                "ok" if result.passed else (result.status if result.status != "ok" else "failed"),
                result.result[:2000], result.passed,
                generated.tokens, round(time.perf_counter() - start, 3),
            )
        )
    return samples


def select_examples(samples: Iterable[Sample], per_task: int = 1) -> list[Sample]:
    """Verified samples, duplicates (same normalised code) dropped, shortest first, ``per_task`` each."""
    by_task: dict[str, list[Sample]] = {}
    for s in samples:
        if s.verified and s.code:
            by_task.setdefault(s.task_id, []).append(s)
    kept: list[Sample] = []
    for task_id in sorted(by_task):
        seen: set[str] = set()
        for s in sorted(by_task[task_id], key=lambda s: (len(s.code or ""), s.index)):
            key = normalise_code(s.code or "")
            if key in seen:
                continue
            seen.add(key)
            kept.append(s)
            if sum(1 for x in kept if x.task_id == task_id) >= per_task:
                break
    return kept
