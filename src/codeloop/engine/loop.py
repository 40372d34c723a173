"""The one loop: generate -> review -> run -> observe -> judge, with the workflow plugged in.

A *workflow* says what each phase means for its job; :func:`drive` only sequences them:

* ``generate()`` asks the model for the next attempt (``None``: the workflow is out of budget,
  or the reply itself ended the run, e.g. a deadline hit mid-reply).
* ``review(attempt)`` decides before anything runs: :attr:`Review.RUN` it,
  :attr:`Review.SKIP` it (the workflow told the model why; ask again) or :attr:`Review.STOP`.
* ``run(attempt)`` runs it in the sandbox and returns what happened (the observation).
* ``observe(attempt, observation)`` tells the model what happened (its next prompt).
* ``judge(attempt, observation)`` says whether the job is done: :attr:`Verdict.DONE` or
  :attr:`Verdict.AGAIN`.

Workflows plugged in today: "answer a question" (:class:`codeloop.agent.run.TaskRun`), "make the
visible tests pass" (:func:`codeloop.evals.generation.generate_sample`), "make the project's
tests pass" (``codeloop fix``, :class:`codeloop.workflows.fix.FixWorkflow`: an attempt is a patch
candidate) and "explain a failure" (``codeloop debug``, :class:`codeloop.workflows.debug.DebugWorkflow`:
the explain step, then the ``--fix`` rerun). The shared
parts every workflow uses live next to this module: reading a model's reply with one
repetition cutter (:mod:`codeloop.engine.generation`) and one missing-import fixer
(:mod:`codeloop.engine.imports`). docs/architecture.md says how a new workflow plugs in.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, TypeVar

__all__ = ["Review", "Verdict", "Workflow", "drive"]

A = TypeVar("A")  # an attempt: what one model reply proposes
O = TypeVar("O")  # an observation: what running it gave  # noqa: E741


class Review(StrEnum):
    """What to do with an attempt before running it."""

    RUN = "run"
    SKIP = "skip"  # not worth running (a repeat, nothing computed): the model is asked again
    STOP = "stop"  # the run is over (out of steps, stuck)


class Verdict(StrEnum):
    """Whether the job is done after an attempt ran."""

    DONE = "done"
    AGAIN = "again"


class Workflow(Protocol[A, O]):
    """The five phases of one job; see the module docstring."""

    def generate(self) -> A | None: ...
    def review(self, attempt: A) -> Review: ...
    def run(self, attempt: A) -> O: ...
    def observe(self, attempt: A, observation: O) -> None: ...
    def judge(self, attempt: A, observation: O) -> Verdict: ...


def drive(workflow: Workflow[A, O]) -> int:
    """Run ``workflow``'s loop until it is done, stopped or out of attempts; the number of attempts run.

    Exceptions pass through: a workflow decides which failures end its run (a model or sandbox
    failure usually does; the user's code failing is an observation, never an exception).
    """
    ran = 0
    while True:
        attempt = workflow.generate()
        if attempt is None:
            return ran
        review = workflow.review(attempt)
        if review is Review.STOP:
            return ran
        if review is Review.SKIP:
            continue
        observation = workflow.run(attempt)
        ran += 1
        workflow.observe(attempt, observation)
        if workflow.judge(attempt, observation) is Verdict.DONE:
            return ran
