"""``codeloop analyze``: the structure of a user's Python code, the findings of ruff and radon, and
an optional model review tied to real lines. Read-only: no file of the user's is written.

>>> from codeloop.workflows.analyze import analyze
>>> report = analyze(["src/"], model=None)          # no model review
>>> report.summary["by_severity"], report.findings[0].rule
>>> report.to_dict()                                # what ``--json`` prints
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.workflows.analyze_findings import (
    SEVERITIES,
    AnalyzeError,
    Finding,
    SourceFile,
    at_least,
    collect_files,
    radon_findings,
    ruff_findings,
    syntax_finding,
)
from codeloop.workflows.analyze_review import REVIEW_TOOL, review_file
from codeloop.workflows.analyze_sarif import to_sarif
from codeloop.workflows.analyze_structure import call_graph, module_name, structure_of

__all__ = ["SEVERITIES", "Analysis", "AnalyzeError", "Finding", "analyze", "review", "to_sarif"]


@dataclass
class Analysis:
    """What ``analyze`` found: findings (sorted by path, line), structure and a summary."""

    findings: list[Finding]
    structure: dict[str, Any]
    summary: dict[str, Any]
    sources: list[SourceFile] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...], "structure": {...}, "summary": {...}}`` (the ``--json`` output)."""
        return {
            "findings": [f.to_dict() for f in self.findings],
            "structure": self.structure,
            "summary": self.summary,
        }

    def to_sarif(self) -> dict[str, Any]:
        """The findings as a SARIF 2.1.0 log."""
        return to_sarif(self.findings)

    def worst(self) -> str | None:
        """The most severe severity among the findings, None when there are none."""
        present = {f.severity for f in self.findings}
        return next((s for s in SEVERITIES if s in present), None)

    def fails(self, threshold: str) -> bool:
        """Whether any finding is at least as severe as ``threshold`` (``--fail-on``)."""
        return any(at_least(f.severity, threshold) for f in self.findings)

    def add(self, extra: Sequence[Finding]) -> None:
        """Add findings (the model's review) and refresh the summary's counts."""
        self.findings = _sorted([*self.findings, *extra])
        self.summary.update(_counts(self.findings))


def _sorted(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.path, f.line, f.col, f.tool, f.rule))


def _counts(findings: Sequence[Finding]) -> dict[str, Any]:
    by_severity = Counter(f.severity for f in findings)
    return {
        "findings": len(findings),
        "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "by_tool": dict(sorted(Counter(f.tool for f in findings).items())),
        "by_rule": dict(Counter(f.rule for f in findings).most_common()),
    }


def analyze(
    paths: Sequence[str | Path],
    *,
    model: Any = None,
    max_review_files: int = 3,
    max_suggestions: int = 3,
    on_suggestion: Callable[[Finding], None] | None = None,
) -> Analysis:
    """Analyse the Python files under ``paths``; with a ``model``, add its review (see :func:`review`).

    Raises :class:`AnalyzeError` for a missing path or no Python files, and the model's
    :class:`~codeloop.errors.ModelError` when the review fails (the tools' findings are then lost
    to this call: use :func:`analyze` with ``model=None`` and :func:`review` to keep them).
    """
    report = analyze_code(paths)
    if model is not None:
        report.add(list(review(report, model, max_files=max_review_files, max_suggestions=max_suggestions,
                               on_suggestion=on_suggestion)))  # fmt: skip
    return report


def analyze_code(paths: Sequence[str | Path]) -> Analysis:
    """The tools' part of :func:`analyze`: structure, ruff, radon and syntax errors, no model."""
    sources = collect_files(paths)
    roots = [Path(p) for p in paths if Path(p).is_dir()]
    findings: list[Finding] = []
    modules: list[dict[str, Any]] = []
    parsable: list[SourceFile] = []
    for source in sources:
        module = structure_of(source, module_name(source.path, roots))
        broken = syntax_finding(source)
        if broken is not None:
            findings.append(broken)
        else:
            parsable.append(source)
            try:
                extra, metrics = radon_findings(source)
            except AnalyzeError:
                raise
            except Exception as e:  # radon's own parser may reject code Python accepts
                extra, metrics = [], {"error": f"radon failed: {e}"}
            findings.extend(extra)
            _merge_metrics(module, metrics)
        modules.append(module)
    findings.extend(ruff_findings(parsable))
    findings = _sorted(findings)
    graph = call_graph(modules)
    for m in modules:
        m.pop("calls", None)  # the calls live in the call graph
    summary: dict[str, Any] = {
        "files": len(sources),
        "lines": sum(len(s.lines) for s in sources),
        "modules": len(modules),
        "classes": sum(len(m["classes"]) for m in modules),
        "functions": sum(len(m["functions"]) for m in modules),
        "syntax_errors": sum(1 for f in findings if f.rule == "syntax-error"),
        **_counts(findings),
    }
    mis = [m["mi"] for m in modules if isinstance(m.get("mi"), float | int)]
    if mis:
        summary["maintainability_index_min"] = min(mis)
    cc = [f.get("complexity", 0) for m in modules for f in m["functions"]]
    if cc:
        summary["max_complexity"] = max(cc)
    return Analysis(findings, {"modules": modules, "call_graph": graph}, summary, sources)


def _merge_metrics(module: dict[str, Any], metrics: dict[str, Any]) -> None:
    if "error" in metrics:
        module["metrics_error"] = metrics["error"]
        return
    module["mi"], module["mi_rank"] = metrics["mi"], metrics["mi_rank"]
    complexity = metrics["complexity"]
    for f in module["functions"]:
        cc = complexity.get(f"{f['name']}:{f['line']}")
        if cc is not None:
            f["complexity"], f["rank"] = cc["complexity"], cc["rank"]


def review(
    report: Analysis,
    model: Any,
    *,
    max_files: int = 3,
    max_suggestions: int = 3,
    on_suggestion: Callable[[Finding], None] | None = None,
) -> Iterator[Finding]:
    """The model's suggestions for the files with the most serious findings (at most ``max_files``),
    each yielded as soon as it is complete and checked against the file's lines."""
    weight = {"error": 100, "warning": 10, "info": 1}
    score: Counter[str] = Counter()
    for f in report.findings:
        if f.tool != REVIEW_TOOL:
            score[f.path] += weight[f.severity]
    order = sorted(report.sources, key=lambda s: (-score[s.path], s.path))
    chosen = [s for s in order if s.text.strip() and syntax_finding(s) is None][:max_files]
    for source in chosen:
        mine = [f for f in report.findings if f.path == source.path and f.tool != REVIEW_TOOL]
        for suggestion in review_file(model, source, mine, max_suggestions=max_suggestions):
            if on_suggestion is not None:
                on_suggestion(suggestion)
            yield suggestion
    report.summary["reviewed_files"] = [s.path for s in chosen]
