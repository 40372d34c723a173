"""Tasks the model proposes itself, kept only when its own programs agree on the answer.

The model is shown a few questions drawn from the programmatic families and asked for a new one.
Proposals are parsed, bounded and deduplicated (against each other, the examples shown and the
``bench/`` task sets). For each proposal codeloop then samples ``n`` programs with the agent's
prompt and runs them; the task is kept only when at least ``m`` of them (default 3 of 4) ran
cleanly and print the same final answer, and those agreeing programs become training examples.
There is no ground truth here, so two more guards apply: a program counts only when its last
printed line is short, and a program that merely prints a number it spelled out itself (not taken
from the task) does not vote.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.selftrain.tasks import generate_tasks

__all__ = [
    "Proposal",
    "final_answer",
    "is_hard_coded",
    "normalise_task",
    "parse_proposal",
    "proposal_messages",
    "propose_tasks",
    "vote",
]

PROPOSE_SYSTEM = "You write short computational questions that a small Python program can answer exactly."
PROPOSE_USER = (
    "Here are some questions; each is answered by a short Python program that prints one number, word, "
    "date or True/False:\n{examples}\n\n"
    "Write one new question of this kind about a different topic, with its own numbers or words. It must "
    "hold all the data needed and have exactly one correct answer. Reply with the question only, on one line."
)
MAX_ANSWER_CHARS = 80


def normalise_task(text: str) -> str:
    """The key two task texts are compared by: lower case, single spaces, no end punctuation."""
    return " ".join(text.lower().split()).rstrip(" ?.!")


def proposal_messages(examples: Sequence[str]) -> list[dict[str, str]]:
    shown = "\n".join(f"- {e}" for e in examples)
    return [
        {"role": "system", "content": PROPOSE_SYSTEM},
        {"role": "user", "content": PROPOSE_USER.format(examples=shown)},
    ]


_PREFIX = re.compile(r"^(?:\s+|[-*]\s+|\d+[.)]\s+|\*\*|(?:new\s+)?(?:question|task)\s*\d*\s*[:.-]\s*)+", re.IGNORECASE)


def parse_proposal(text: str) -> tuple[str | None, str]:
    """``(task, "ok")`` from a model's reply, or ``(None, why)`` when it is not a usable question."""
    if "```" in text:
        return None, "code"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None, "empty"
    line = _PREFIX.sub("", lines[0]).strip().strip("*\"'` ").strip()
    if len(line) < 25:
        return None, "too short"
    if len(line) > 500:
        return None, "too long"
    if not line.endswith(("?", ".")):
        return None, "not a question"
    if re.search(r"\b(write|implement|create|define)\b.*\b(function|class|program|script)\b", line, re.IGNORECASE):
        return None, "asks for code, not an answer"
    return line, "ok"


@dataclass(frozen=True)
class Proposal:
    """One proposal: the model's raw reply, the parsed task (or ``None``) and the verdict on it."""

    attempt: int
    raw: str
    task: str | None
    verdict: str  # "ok", or why it was dropped

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "raw": self.raw, "task": self.task, "verdict": self.verdict}


def bench_task_texts(root: Path | None = None) -> set[str]:
    """Normalised texts of ``bench/tasks``, ``bench/heldout`` and ``bench/fresh`` (empty where no checkout)."""
    root = root or Path(__file__).resolve().parents[3] / "bench"
    texts: set[str] = set()
    for directory in ("tasks", "heldout", "fresh"):
        for path in sorted((root / directory).glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    texts.add(normalise_task(json.loads(line)["task"]))
    return texts


def propose_tasks(
    model: Any,
    count: int,
    *,
    seed: int,
    shots: int = 3,
    temperature: float = 1.0,
    max_tokens: int = 96,
    max_attempts: int | None = None,
    exclude: Iterable[str] = (),
) -> tuple[list[str], list[Proposal]]:
    """Up to ``count`` distinct new tasks (at most ``max_attempts`` model calls, default 3x) and every proposal.

    Each call shows ``shots`` questions drawn (seeded) from the programmatic families; a proposal
    equal to one shown, to an earlier one or to any text in ``exclude`` is dropped.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    attempts = max_attempts if max_attempts is not None else 3 * count
    excluded = {normalise_task(t) for t in exclude}
    pool = [t.task for t in generate_tasks(max(40, 4 * shots), seed=seed + 7)]
    rng = random.Random(seed)
    kept: list[str] = []
    seen: set[str] = set()
    proposals: list[Proposal] = []
    for attempt in range(attempts):
        if len(kept) >= count:
            break
        examples = rng.sample(pool, shots)
        reply = model.complete(
            proposal_messages(examples), max_tokens=max_tokens, temperature=temperature, seed=seed * 7919 + attempt
        )
        task, verdict = parse_proposal(reply.text)
        if task is not None:
            key = normalise_task(task)
            if key in {normalise_task(e) for e in examples}:
                task, verdict = None, "copies an example"
            elif key in excluded:
                task, verdict = None, "a benchmark task"
            elif key in seen:
                task, verdict = None, "duplicate"
            else:
                seen.add(key)
                kept.append(task)
        proposals.append(Proposal(attempt, reply.text[:1000], task, verdict))
    return kept, proposals


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def final_answer(stdout: str) -> str | None:
    """The answer a program printed: its last non-empty line, normalised; ``None`` when there is none.

    Case, spaces, quotes and a trailing full stop do not matter; a line with exactly one number
    is that number, by value (``Total: 1,234`` is ``1234``, ``6.0`` is ``6``; floats to 6
    significant digits).
    """
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last = " ".join(re.sub(r"[\"'`*]", "", lines[-1]).lower().split()).rstrip(".")
    if not last or len(last) > MAX_ANSWER_CHARS:
        return None
    numbers = _NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", last))
    if len(numbers) == 1:  # one number: that is the answer, whatever words label it
        value = float(numbers[0])
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return last


def is_hard_coded(code: str, answer: str, task: str) -> bool:
    """A program that prints a number of two or more digits it wrote itself, not one of the task's.

    Such a program agrees with others by copying a guess, not by computing; it does not vote.
    """
    if not _NUMBER.fullmatch(answer) or len(answer.lstrip("-").replace(".", "")) < 2:
        return False
    token = re.compile(rf"(?<![\w.]){re.escape(answer)}(?![\w.])")
    return bool(token.search(code)) and not token.search(task)


def vote(answers: Sequence[str | None], m: int) -> tuple[str | None, list[int]]:
    """The answer at least ``m`` of ``answers`` agree on (``None``s never vote), and who gave it.

    A tie for the most votes is no agreement: ``(None, [])``.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, []
    (top, n), *rest = counts.most_common()
    if n < m or (rest and rest[0][1] == n):
        return None, []
    return top, [i for i, a in enumerate(answers) if a == top]
