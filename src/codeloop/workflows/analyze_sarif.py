"""SARIF 2.1.0 for ``codeloop analyze --sarif FILE``: one run per tool, for code-scanning UIs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codeloop.workflows.analyze_findings import Finding

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "to_sarif"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_TOOLS: dict[str, tuple[str, str | None]] = {
    "ruff": ("ruff", "https://docs.astral.sh/ruff/"),
    "radon": ("radon", "https://radon.readthedocs.io/"),
    "python": ("python", "https://docs.python.org/3/reference/"),
    "model": ("codeloop-review", None),
}


def _uri(path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        return p.as_uri()
    return Path(os.path.normpath(path)).as_posix()


def to_sarif(findings: Sequence[Finding], *, version: str = "") -> dict[str, Any]:
    """The SARIF log of ``findings``: a run per tool, each with the rules its results use."""
    runs: list[dict[str, Any]] = []
    for tool in sorted({f.tool for f in findings} | {"ruff", "radon"}):
        name, info = _TOOLS.get(tool, (tool, None))
        mine = [f for f in findings if f.tool == tool]
        rules: dict[str, dict[str, Any]] = {}
        for f in mine:
            if f.rule not in rules:
                rule: dict[str, Any] = {"id": f.rule, "shortDescription": {"text": f.rule}}
                if f.url:
                    rule["helpUri"] = f.url
                rule["defaultConfiguration"] = {"level": _LEVEL[f.severity]}
                rules[f.rule] = rule
        driver: dict[str, Any] = {"name": name, "rules": list(rules.values())}
        if info:
            driver["informationUri"] = info
        if tool == "model" and version:
            driver["version"] = version
        results = []
        index = {rule_id: i for i, rule_id in enumerate(rules)}
        for f in mine:
            region: dict[str, Any] = {"startLine": max(1, f.line), "startColumn": max(1, f.col)}
            if f.end_line and f.end_line >= f.line:
                region["endLine"] = f.end_line
            results.append(
                {
                    "ruleId": f.rule,
                    "ruleIndex": index[f.rule],
                    "level": _LEVEL[f.severity],
                    "message": {"text": f.message or f.rule},
                    "locations": [
                        {"physicalLocation": {"artifactLocation": {"uri": _uri(f.path)}, "region": region}}
                    ],
                }
            )
        runs.append({"tool": {"driver": driver}, "results": results, "columnKind": "unicodeCodePoints"})
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": runs}
