"""``codeloop analyze PATH...``: structure, ruff and radon findings, and a model review."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from codeloop.cli.argtypes import positive_int
from codeloop.errors import CodeloopError
from codeloop.workflows.analyze import SEVERITIES, Analysis, Finding, analyze_code, review
from codeloop.workflows.analyze_findings import AnalyzeError

DESCRIPTION = (
    "Analyse Python files or directories without changing them: their structure (modules, classes, "
    "functions with signatures and line spans, imports, a call graph), the findings of ruff (pyflakes, "
    "bugbear, flake8-bandit security rules, mccabe complexity) and radon (cyclomatic complexity, "
    "maintainability index), and a short model review tied to real lines (--no-model skips it). "
    "Exit status: 0, or 1 when --fail-on finds a finding that severe or the model review fails."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Python files or directories")
    parser.add_argument("--no-model", action="store_true", help="skip the model review (tools only)")
    parser.add_argument("--sarif", metavar="FILE", help="also write the findings as SARIF 2.1.0 to FILE")
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default=None,
        help="exit 1 when a finding is at least this severe (for CI)",
    )
    parser.add_argument(
        "--review-files",
        type=positive_int,
        default=3,
        help="files the model reviews, most findings first (default 3)",
    )
    parser.add_argument(
        "--suggestions", type=positive_int, default=3, help="model suggestions per reviewed file (default 3)"
    )
    parser.add_argument("--no-structure", action="store_true", help="text output: leave out the outline")


def run(args: argparse.Namespace) -> int:
    report = analyze_code(args.paths)
    if args.sarif:
        _refuse_source(args.sarif, report)
    out = sys.stdout
    if not args.json:
        if not args.no_structure:
            print_outline(report, out)
        print_findings(report.findings, out)
        print_summary(report, out)
    failed_review = None
    if not args.no_model:
        failed_review = _review(report, args, out)
    if args.sarif:
        write_json_atomically(Path(args.sarif), report.to_sarif())
        if not args.json:
            print(f"SARIF written to {args.sarif}", file=out)
    if args.json:
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    if failed_review is not None:
        print(
            f"codeloop: error: model review failed: {failed_review} (--no-model skips the review)",
            file=sys.stderr,
        )
        return 1
    if args.fail_on and report.fails(args.fail_on):
        worst = report.worst()
        if not args.json:
            print(f"failing: findings of severity {worst} (--fail-on {args.fail_on})", file=sys.stderr)
        return 1
    return 0


def _review(report: Analysis, args: argparse.Namespace, out: TextIO) -> str | None:
    """Run the model review into ``report``; the error text when the model fails, else None."""
    from codeloop.llm import get_model

    live = not args.json
    try:
        model = get_model(args.model, base_url=args.base_url)
        if live:
            print(f"\nModel review ({model.name}):", file=out, flush=True)
        found: list[Finding] = []

        def show(f: Finding) -> None:
            if live:
                print(f"  {f.path}:{f.line}: {f.message}", file=out, flush=True)

        try:
            for suggestion in review(
                report,
                model,
                max_files=args.review_files,
                max_suggestions=args.suggestions,
                on_suggestion=show,
            ):
                found.append(suggestion)
        finally:
            report.add(found)
        report.summary["review_model"] = model.name
        if live and not found:
            print("  (no suggestion tied to a line of the code)", file=out)
    except CodeloopError as e:
        if isinstance(e, AnalyzeError):
            raise
        report.summary["review_error"] = str(e)
        return str(e)
    return None


def _refuse_source(sarif: str, report: Analysis) -> None:
    target = Path(sarif).resolve()
    if any(s.real == target for s in report.sources):
        raise AnalyzeError(f"--sarif {sarif} is one of the analysed files: name another file")


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AnalyzeError(f"cannot write {path}: no such directory {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def print_outline(report: Analysis, out: TextIO) -> None:
    for module in report.structure["modules"]:
        mi = f"  MI {module['mi']:.0f} ({module['mi_rank']})" if "mi" in module else ""
        print(f"{module['path']}  [{module['module']}, {module['lines']} lines{mi}]", file=out)
        if module.get("error"):
            print(f"  does not parse: {module['error']}", file=out)
        items = [(c["line"], c["end_line"], f"class {c['name']}", None) for c in module["classes"]]
        items += [
            (f["line"], f["end_line"], f["signature"], f.get("complexity")) for f in module["functions"]
        ]
        for line, end, text, cc in sorted(items, key=lambda x: x[0]):
            cx = f"  cc={cc}" if cc is not None else ""
            print(f"  {line:>4}-{end:<4} {text}{cx}", file=out)
    edges = [e for e in report.structure["call_graph"]["edges"] if e["internal"]]
    if edges:
        print(f"call graph: {len(edges)} internal call(s)", file=out)
        for e in edges[:40]:
            print(f"  {e['caller']} -> {e['callee']}  (line {', '.join(map(str, e['lines']))})", file=out)
        if len(edges) > 40:
            print(f"  ... {len(edges) - 40} more (--json has them all)", file=out)
    print(file=out)


def print_findings(findings: list[Finding], out: TextIO) -> None:
    for f in findings:
        print(f"{f.path}:{f.line}:{f.col}: {f.severity} {f.rule} [{f.tool}] {f.message}", file=out)


def print_summary(report: Analysis, out: TextIO) -> None:
    s = report.summary
    counts = ", ".join(f"{n} {sev}" for sev, n in s["by_severity"].items() if n) or "no findings"
    print(
        f"\n{s['files']} file(s), {s['lines']} lines, {s['classes']} class(es), {s['functions']} function(s): "
        f"{counts}",
        file=out,
    )
