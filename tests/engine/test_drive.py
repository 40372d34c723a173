"""The engine's loop: the order of the phases and what each answer of review and judge does."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from codeloop.engine import Review, Verdict, drive


@dataclass
class Scripted:
    """A workflow whose attempts, reviews and verdicts are scripted; it records every phase."""

    attempts: list[str | None]
    reviews: dict[str, Review] = field(default_factory=dict)
    done_when: str | None = None
    log: list[str] = field(default_factory=list)

    def generate(self) -> str | None:
        attempt = self.attempts.pop(0) if self.attempts else None
        self.log.append(f"generate {attempt}")
        return attempt

    def review(self, attempt: str) -> Review:
        self.log.append(f"review {attempt}")
        return self.reviews.get(attempt, Review.RUN)

    def run(self, attempt: str) -> str:
        self.log.append(f"run {attempt}")
        return attempt.upper()

    def observe(self, attempt: str, observation: str) -> None:
        self.log.append(f"observe {observation}")

    def judge(self, attempt: str, observation: str) -> Verdict:
        self.log.append(f"judge {observation}")
        return Verdict.DONE if attempt == self.done_when else Verdict.AGAIN


def test_phases_run_in_order_until_the_judge_says_done() -> None:
    wf = Scripted(["a", "b", "c"], done_when="b")
    assert drive(wf) == 2
    assert wf.log == [
        "generate a", "review a", "run a", "observe A", "judge A",
        "generate b", "review b", "run b", "observe B", "judge B",
    ]  # fmt: skip
    assert wf.attempts == ["c"]  # never asked for


def test_a_skipped_attempt_is_not_run_and_the_model_is_asked_again() -> None:
    wf = Scripted(["a", "b"], reviews={"a": Review.SKIP}, done_when="b")
    assert drive(wf) == 1
    assert "run a" not in wf.log
    assert wf.log[-1] == "judge B"


def test_review_can_stop_the_run_before_anything_runs() -> None:
    wf = Scripted(["a", "b"], reviews={"b": Review.STOP})
    assert drive(wf) == 1
    assert wf.log[-1] == "review b"


def test_no_attempt_ends_the_run() -> None:
    wf = Scripted([])
    assert drive(wf) == 0
    assert wf.log == ["generate None"]


def test_a_failure_in_a_phase_reaches_the_caller() -> None:
    class Broken(Scripted):
        def run(self, attempt: str) -> str:
            raise RuntimeError("the sandbox broke")

    with pytest.raises(RuntimeError, match="the sandbox broke"):
        drive(Broken(["a"]))
