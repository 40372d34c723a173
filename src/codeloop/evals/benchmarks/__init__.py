"""The benchmarks ``codeloop eval`` runs, each behind the :class:`Benchmark` protocol.

* ``humaneval``: HumanEval's 164 problems (plain, repair, trace);
* ``humaneval-infill``: HumanEval-Infilling rebuilt from the same data, single-line or multi-line
  fill-in-the-middle;
* ``evalplus``: HumanEval+ or MBPP+ read from a local EvalPlus JSONL file (``--data``).

Adding one: a module here with a class that has the protocol's methods (most benchmarks of
Python functions subclass :class:`FunctionBenchmark` and write ``load``, ``resolve_style``,
``prompt`` and ``generate``), and one line in :data:`BENCHMARKS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from codeloop.evals.benchmarks.base import Benchmark, FunctionBenchmark, PromptText
from codeloop.evals.benchmarks.evalplus import EvalPlus
from codeloop.evals.benchmarks.humaneval import HumanEval
from codeloop.evals.benchmarks.infill import HumanEvalInfill, Span
from codeloop.evals.errors import EvalInputError

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "EvalPlus",
    "FunctionBenchmark",
    "HumanEval",
    "HumanEvalInfill",
    "PromptText",
    "Span",
    "get_benchmark",
]

_Factory = Callable[[str, "str | os.PathLike[str] | None"], Benchmark]

#: name on the command line -> (span, data) -> the benchmark
BENCHMARKS: dict[str, _Factory] = {
    "humaneval": lambda span, data: HumanEval(),
    "humaneval-infill": lambda span, data: HumanEvalInfill(span),
    "evalplus": lambda span, data: EvalPlus(data),
}


def get_benchmark(
    name: str, *, span: str = "single-line", data: str | os.PathLike[str] | None = None
) -> Benchmark:
    """The benchmark called ``name``; ``span`` picks the infilling variant, ``data`` EvalPlus's file."""
    factory = BENCHMARKS.get(name)
    if factory is None:
        raise EvalInputError(f"unknown benchmark {name!r}: use {', '.join(BENCHMARKS)}")
    if data is not None and name != "evalplus":
        raise EvalInputError(f"--data reads an EvalPlus file: it goes with the evalplus benchmark, not {name}")
    return factory(span, data)
