"""Run a candidate against the docstring's examples in a fresh sandbox session.

This is the repair modes' only test signal: the examples a reader of the prompt can see. Each
example runs in its own cell with a short timeout, so a hang is pinned to its example; a result
comes back as JSON in the cell's value, compared in the sandbox with a float tolerance.
"""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from codeloop.evals.checker import program_cell
from codeloop.evals.examples import Example
from codeloop.evals.problems import Problem
from codeloop.evals.sessions import Session, SessionFactory, error_summary
from codeloop.sandbox.result import RunResult
from codeloop.sandbox.tracing import Trace, TraceError, TraceLimits, parse_trace, trace_cell

__all__ = ["ExampleOutcome", "VisibleReport", "run_visible"]


def _codeloop_example(thunk: object, expected: object) -> str:  # pragma: no cover - runs in the sandbox
    """Call ``thunk``, compare with ``expected`` (floats within 1e-6), return a JSON verdict."""
    import json
    import math
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = 200
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 12

    def same(got: object, want: object) -> bool:
        if isinstance(got, float | int) and isinstance(want, float | int) and not isinstance(got, bool):
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6)
        if isinstance(got, list | tuple) and isinstance(want, list | tuple) and type(got) is type(want):
            return len(got) == len(want) and all(same(a, b) for a, b in zip(got, want, strict=True))
        return bool(got == want)

    try:
        got = thunk()  # type: ignore[operator]
    except Exception as e:
        return json.dumps({"ok": False, "error": f"{type(e).__name__}: {str(e)[:300]}"})
    try:
        ok = same(got, expected)
    except Exception as e:
        return json.dumps({"ok": False, "got": short.repr(got), "error": f"comparing raised {type(e).__name__}"})
    return json.dumps({"ok": ok, "got": short.repr(got)})


# Statuses after which the session restarted: definitions are gone and must be loaded again.
_STATE_LOST = frozenset({"timeout", "crashed", "memory", "output_limit"})
_STATUS_WORDS = {
    "crashed": "the process died (an exit, a kill or a crash)",
    "memory": "it ran out of memory",
    "output_limit": "it printed too much output",
}


@dataclass(frozen=True)
class ExampleOutcome:
    """How one example went: passed, or what came back instead (a value, an error, a timeout)."""

    example: Example
    passed: bool
    got: str | None = None
    error: str | None = None
    stdout: str = ""
    status: str = "ok"  # the sandbox status of the example's cell


@dataclass(frozen=True)
class VisibleReport:
    """A candidate's run on the visible examples; ``program_error`` when it does not even load."""

    outcomes: list[ExampleOutcome] = field(default_factory=list)
    program_error: str | None = None
    trace: Trace | None = None
    trace_note: str | None = None
    total: int = 0  # examples there are; after a hang the rest are not run

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def all_passed(self) -> bool:
        return self.program_error is None and all(o.passed for o in self.outcomes)

    @property
    def first_failure(self) -> ExampleOutcome | None:
        return next((o for o in self.outcomes if not o.passed), None)


def _program_error(result: RunResult) -> str:
    if result.status == "timeout":
        return "loading the code timed out"
    if result.status == "error":
        traceback = str(getattr(result.error, "traceback", "") or "")
        tail = "\n".join(traceback.strip().splitlines()[-6:]) if traceback else ""
        return tail or error_summary(result)
    return f"loading the code ended with status {result.status}"


def _run_one(session: Session, example: Example, helper_cell: str, timeout: float) -> ExampleOutcome:
    cell = f"{helper_cell}\n_codeloop_example(lambda: {example.call}, {example.expected})\n"
    result = session.run(cell, timeout=timeout)
    stdout = (result.stdout or "")[-500:]
    status = str(result.status)
    if status == "timeout":
        return ExampleOutcome(example, False, error=f"timed out after {timeout:g} s", stdout=stdout, status=status)
    if status != "ok":
        error = error_summary(result) or _STATUS_WORDS.get(status, status)
        return ExampleOutcome(example, False, error=error, stdout=stdout, status=status)
    verdict = _read_verdict(result.value)
    if verdict is None:
        return ExampleOutcome(example, False, error="the example's result could not be read", stdout=stdout)
    return ExampleOutcome(example, *verdict, stdout=stdout)


def _read_verdict(value: str | None) -> tuple[bool, str | None, str | None] | None:
    """``(ok, got, error)`` from the cell's value (worker-controlled text); None when it is malformed.

    The value must be the repr of a JSON object whose ``ok`` is a bool and whose ``got`` and
    ``error`` are strings or absent; anything else (a list, a number, a nested object) is malformed.
    """
    try:
        verdict = json.loads(ast.literal_eval(value or ""))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("ok"), bool):
        return None
    got, error = verdict.get("got"), verdict.get("error")
    if not isinstance(got, str | None) or not isinstance(error, str | None):
        return None
    return verdict["ok"], got, error


def run_visible(
    problem: Problem,
    completion: str,
    examples: Sequence[Example],
    open_session: SessionFactory,
    *,
    timeout: float = 3.0,
    trace: bool = False,
    trace_limits: TraceLimits | None = None,
) -> VisibleReport:
    """Load the candidate, run each example, and with ``trace`` trace the first failing one."""
    program = program_cell(problem, completion)
    helper_cell = inspect.getsource(_codeloop_example)
    outcomes: list[ExampleOutcome] = []
    total = len(examples)
    with open_session() as session:
        loaded = session.run(program, timeout=timeout)
        if loaded.status != "ok":
            return VisibleReport(program_error=_program_error(loaded), total=total)
        state_lost = False
        for example in examples:
            if state_lost and session.run(program, timeout=timeout).status != "ok":
                break
            outcome = _run_one(session, example, helper_cell, timeout)
            outcomes.append(outcome)
            state_lost = outcome.status in _STATE_LOST
            if outcome.status == "timeout":
                break  # one hang is enough feedback, and each costs a full timeout
        failure = next((o for o in outcomes if not o.passed), None)
        if not trace or failure is None:
            return VisibleReport(outcomes, total=total)
        if state_lost and session.run(program, timeout=timeout).status != "ok":
            return VisibleReport(outcomes, trace_note="could not reload the code to trace it", total=total)
        traced = session.run(trace_cell(failure.example.call, problem.entry_point, trace_limits), timeout=timeout * 2)
    try:
        return VisibleReport(outcomes, trace=parse_trace(traced.value), total=total)
    except TraceError as e:
        return VisibleReport(outcomes, trace_note=f"no trace: {traced.status} ({e})", total=total)
