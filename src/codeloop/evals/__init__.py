"""The benchmark harness: pass@k in the sandbox on HumanEval (plain, repair and trace modes),
HumanEval-Infilling and EvalPlus files; each benchmark lives in ``evals/benchmarks``.

>>> from codeloop.evals import EvalOptions, run_eval
>>> report = run_eval(EvalOptions(samples=Path("samples.jsonl")))
>>> report.passed, report.pass_at_k["pass@1"]
>>> report = run_eval(EvalOptions(benchmark="humaneval-infill", span="multi-line"))

Every sample runs in a fresh sandbox session; the verdict comes from the check's own channel
(status of the check cell and a per-sample token), never from what the sample prints or its
exit code.
"""

from __future__ import annotations

from codeloop.evals.benchmarks import BENCHMARKS, Benchmark, get_benchmark
from codeloop.evals.checker import CheckResult, Outcome, check_sample
from codeloop.evals.errors import DatasetError, EvalError, EvalInputError
from codeloop.evals.evaluate import evaluate_samples
from codeloop.evals.examples import Example, extract_examples
from codeloop.evals.generation import Generated, GenerationSettings, Mode, generate_sample
from codeloop.evals.passk import mean_pass_at_k, parse_ks, pass_at_k
from codeloop.evals.problems import Problem, load_humaneval
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.report import EvalReport
from codeloop.evals.run import EvalOptions, HumanEvalOptions, run_eval, run_humaneval
from codeloop.evals.samples import Sample, load_samples
from codeloop.evals.sessions import sandbox_factory

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "CheckResult",
    "DatasetError",
    "EvalError",
    "EvalInputError",
    "EvalOptions",
    "EvalReport",
    "Example",
    "Generated",
    "GenerationSettings",
    "HumanEvalOptions",
    "Mode",
    "Outcome",
    "Problem",
    "PromptStyle",
    "Sample",
    "check_sample",
    "evaluate_samples",
    "extract_examples",
    "generate_sample",
    "get_benchmark",
    "load_humaneval",
    "load_samples",
    "mean_pass_at_k",
    "parse_ks",
    "pass_at_k",
    "run_eval",
    "run_humaneval",
    "sandbox_factory",
]
