"""The evaluation report: counts, pass@k, and how it was made; as a table or one JSON object."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codeloop.evals.passk import mean_pass_at_k
from codeloop.evals.results import SavedResult

__all__ = ["EvalReport", "build_report"]


@dataclass(frozen=True)
class EvalReport:
    """What a run measured. ``pass_at_k`` maps "pass@1" etc. to a fraction, or None if n < k."""

    benchmark: str
    problems: int
    samples: int
    passed: int
    pass_at_k: dict[str, float | None]
    results_path: str
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, int, str]] = field(default_factory=list)  # (task_id, completion_id, result)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "benchmark": self.benchmark,
            "problems": self.problems,
            "samples": self.samples,
            "passed": self.passed,
        }
        data.update(self.pass_at_k)
        data.update(
            results=self.results_path, settings=self.settings, timings=self.timings, failures=self.failures
        )
        return data

    def format_table(self) -> str:
        rows: list[tuple[str, str]] = [
            ("benchmark", self.benchmark),
            *((k, str(v)) for k, v in self.settings.items() if v is not None),
            ("problems", str(self.problems)),
            ("samples", str(self.samples)),
            ("passed", f"{self.passed}/{self.samples}"),
        ]
        for name, value in self.pass_at_k.items():
            rows.append((name, "n/a (too few samples)" if value is None else f"{100 * value:.1f}%"))
        for kind, count in sorted(self.failures.items(), key=lambda kv: -kv[1]):
            rows.append((f"failed: {kind}", str(count)))
        for name, seconds in self.timings.items():
            rows.append((name, f"{seconds:.2f} s"))
        rows.append(("results", self.results_path))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _failure_kind(result: str) -> str:
    """A short class of failure for the report: "timed out", "AssertionError", "SyntaxError", ..."""
    if result == "timed out":
        return "timed out"
    text = result.removeprefix("failed: ")
    head = text.split(":", 1)[0].strip()
    return head if head.isidentifier() else text[:40]


def build_report(
    benchmark: str,
    results: Iterable[SavedResult],
    ks: Sequence[int],
    results_path: str,
    settings: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
) -> EvalReport:
    per_task: dict[str, list[bool]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    failed: list[tuple[str, int, str]] = []
    for r in results:
        per_task[r.task_id].append(r.passed)
        if not r.passed:
            failures[_failure_kind(r.result)] += 1
            failed.append((r.task_id, r.completion_id, r.result))
    counts = [(len(v), sum(v)) for v in per_task.values()]
    return EvalReport(
        benchmark=benchmark,
        problems=len(per_task),
        samples=sum(n for n, _ in counts),
        passed=sum(c for _, c in counts),
        pass_at_k={f"pass@{k}": mean_pass_at_k(counts, k) for k in ks},
        results_path=results_path,
        settings=dict(settings or {}),
        timings=dict(timings or {}),
        failures=dict(failures),
        failed=failed,
    )
