"""Sample programs for tasks with the model, run them in the sandbox, keep the verified ones.

The prompt is exactly the agent's first prompt for the task (system prompt, worked example,
task), so the examples teach the model the job it does in ``codeloop run``. A reply counts
only up to the end of its first Python block (where the agent stops generating and runs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from codeloop.agent.checks import normalise_code
from codeloop.agent.loop import Agent
from codeloop.agent.parsing import cut_after_first_block, parse_reply
from codeloop.selftrain.tasks import Task
from codeloop.selftrain.verify import output_matches

__all__ = ["Sample", "sample_task", "select_examples"]


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
) -> list[Sample]:
    """``k`` replies for ``task`` at ``temperature``, each run with ``run_code(code) -> (status, stdout)``."""
    messages = agent.initial_messages(task.task)
    samples: list[Sample] = []
    for i in range(k):
        start = time.perf_counter()
        reply = agent.model.complete(  # type: ignore[attr-defined]
            messages, max_tokens=max_tokens, temperature=temperature, seed=seed * 1000 + i, stop=None
        )
        text = cut_after_first_block(reply.text) or reply.text
        code = parse_reply(text).code
        if code is None:
            status, stdout = "no-code", ""
        else:
            status, stdout = run_code(code)
        verified = status == "ok" and output_matches(stdout, task.answer, task.check)
        samples.append(
            Sample(
                task.id, i, text, code, status, stdout[-2000:], verified,
                int(reply.usage.completion_tokens or 0), round(time.perf_counter() - start, 3),
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
