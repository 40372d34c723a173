"""Findings for ``codeloop analyze``: the tools developers already trust, run as they are.

ruff (pyflakes, pycodestyle errors, bugbear, its flake8-bandit ``S`` rules, mccabe ``C901``) runs
as its own binary with ``--no-cache`` so nothing is written next to the user's code; radon's
cyclomatic complexity and maintainability index come from its library API; a file that does not
parse is one finding (``syntax-error``, from Python's own parser) with its line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeloop.errors import CodeloopError

__all__ = [
    "RUFF_SELECT",
    "SEVERITIES",
    "AnalyzeError",
    "Finding",
    "SourceFile",
    "at_least",
    "collect_files",
    "radon_findings",
    "ruff_findings",
    "syntax_finding",
]

#: from most to least severe; ``--fail-on`` takes one of these
SEVERITIES = ("error", "warning", "info")

#: ruff's rule families: pyflakes, pycodestyle's non-style errors (ruff's defaults: imports,
#: statements, IO) and warnings, bugbear, flake8-bandit, mccabe; no line-length or layout rules
RUFF_SELECT = ("F", "E4", "E7", "E9", "W", "B", "S", "C901")
#: the complexity above which mccabe (ruff C901) and radon report a function
MAX_COMPLEXITY = 10

# pyflakes rules that are real bugs (undefined names, broken syntax-level constructs), not style
_ERROR_RULES = {"F821", "F822", "F823", "F632", "F811", "E902", "E999", "B006", "B008", "B023"}
_ERROR_PREFIXES = ("F6", "F7", "E9")
# flake8-bandit rules for code that runs attacker data: exec/eval, shell, SQL, pickle, YAML, Jinja
_SECURITY_ERRORS = {
    "S102", "S301", "S302", "S307", "S506", "S602", "S604", "S605", "S608", "S611", "S701", "S702",
}  # fmt: skip
_SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "__pycache__",
    "node_modules",
    ".tox",
    ".nox",
    "build",
    "dist",
}


class AnalyzeError(CodeloopError):
    """The analysis cannot start: a missing path, no Python files, a tool that is not installed."""


@dataclass(frozen=True)
class Finding:
    """One problem at one place. ``line`` and ``col`` are 1-based; ``rule`` is the tool's own id."""

    path: str
    line: int
    col: int
    rule: str
    tool: str
    severity: str
    message: str
    end_line: int | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SourceFile:
    """A Python file to analyse: ``path`` as shown to the user, ``real`` on disk, its text."""

    path: str
    real: Path
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is as severe as ``threshold`` or more."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def collect_files(paths: Sequence[str | Path]) -> list[SourceFile]:
    """The Python files named by ``paths`` (files, or directories walked without following links).

    A file named explicitly is analysed whatever its suffix; in a directory only ``*.py`` files
    count, and virtualenvs, VCS and build folders are skipped. Raises :class:`AnalyzeError`
    for a missing path or when there is nothing to analyse.
    """
    if not paths:
        raise AnalyzeError("no path given: name a Python file or a directory")
    found: dict[Path, SourceFile] = {}
    for given in paths:
        p = Path(given)
        if not p.exists():
            raise AnalyzeError(f"no such file or directory: {given}")
        if p.is_file():
            _add(found, p, str(given))
        elif p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
                for name in sorted(files):
                    f = Path(root) / name
                    if name.endswith(".py") and f.is_file() and not f.is_symlink():
                        _add(found, f, str(f))
        else:
            raise AnalyzeError(f"not a file or directory: {given}")
    if not found:
        raise AnalyzeError(f"no Python files in {', '.join(str(p) for p in paths)}")
    return list(found.values())


def _add(found: dict[Path, SourceFile], path: Path, shown: str) -> None:
    real = path.resolve()
    if real in found:
        return
    try:
        data = real.read_bytes()
    except OSError as e:
        raise AnalyzeError(f"cannot read {shown}: {e.strerror or e}") from e
    text = data.decode("utf-8", errors="replace")
    found[real] = SourceFile(path=os.path.normpath(shown), real=real, text=text)


def syntax_finding(source: SourceFile) -> Finding | None:
    """The syntax error of ``source`` as a finding, or None when it parses."""
    try:
        compile(source.text, source.path, "exec", dont_inherit=True, flags=0x400)  # PyCF_ONLY_AST
    except SyntaxError as e:
        line = e.lineno or 1
        col = e.offset or 1
        return Finding(
            source.path, line, max(1, col), "syntax-error", "python", "error", f"SyntaxError: {e.msg}"
        )
    except ValueError as e:  # source with NUL bytes
        return Finding(source.path, 1, 1, "syntax-error", "python", "error", f"cannot parse: {e}")
    return None


def _ruff_severity(code: str) -> str:
    if code == "S101":  # assert: idiomatic in tests, only a smell in production code
        return "info"
    if code in _ERROR_RULES or code.startswith(_ERROR_PREFIXES) or code in _SECURITY_ERRORS:
        return "error"
    if code.startswith(("F", "B", "S", "C9", "E")):
        return "warning"
    return "info"


def ruff_findings(sources: Sequence[SourceFile], *, timeout: float = 120.0) -> list[Finding]:
    """Run ruff on ``sources`` (isolated from any project config, no cache written) and translate."""
    if not sources:
        return []
    by_real = {str(s.real): s for s in sources}
    cmd = [
        sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--exit-zero",
        "--output-format", "json", "--select", ",".join(RUFF_SELECT),
        "--config", f"lint.mccabe.max-complexity = {MAX_COMPLEXITY}", "--", *by_real,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise AnalyzeError(f"ruff did not finish in {timeout:g} s") from e
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        hint = " (install it: pip install ruff)" if "No module named ruff" in proc.stderr else ""
        raise AnalyzeError(f"ruff failed: {detail[0]}{hint}")
    try:
        raw = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError as e:
        raise AnalyzeError(f"ruff printed something that is not JSON: {proc.stdout[:200]!r}") from e
    out: list[Finding] = []
    for item in raw:
        code = item.get("code")
        if not code:  # ruff's own syntax errors: Python's parser reports those (syntax_finding)
            continue
        source = by_real.get(str(Path(item["filename"]).resolve()))
        path = source.path if source else item["filename"]
        loc, end = item.get("location") or {}, item.get("end_location") or {}
        out.append(
            Finding(
                path=path,
                line=int(loc.get("row") or 1),
                col=int(loc.get("column") or 1),
                rule=code,
                tool="ruff",
                severity=_ruff_severity(code),
                message=item.get("message", ""),
                end_line=end.get("row"),
                url=item.get("url"),
            )
        )
    return out


def radon_findings(source: SourceFile) -> tuple[list[Finding], dict[str, Any]]:
    """radon on one parsable file: findings for complex functions (rank C or worse) and a low
    maintainability index, plus the metrics themselves (``{"mi", "mi_rank", "complexity": {...}}``).
    """
    try:
        from radon.complexity import cc_rank, cc_visit
        from radon.metrics import mi_rank, mi_visit
    except ImportError as e:
        raise AnalyzeError("radon is not installed (pip install radon)") from e
    findings: list[Finding] = []
    complexity: dict[str, dict[str, Any]] = {}
    for block in _flatten(cc_visit(source.text)):
        name = block.fullname
        rank = cc_rank(block.complexity)
        complexity[f"{name}:{block.lineno}"] = {"complexity": block.complexity, "rank": rank}
        if rank >= "C":
            severity = "info" if rank == "C" else "warning" if rank in ("D", "E") else "error"
            findings.append(
                Finding(
                    source.path,
                    block.lineno,
                    block.col_offset + 1,
                    f"CC-{rank}",
                    "radon",
                    severity,
                    f"{name} has cyclomatic complexity {block.complexity} (rank {rank})",
                    end_line=block.endline,
                )
            )
    mi = float(mi_visit(source.text, multi=True))
    rank = mi_rank(mi)
    if rank != "A":
        findings.append(
            Finding(
                source.path,
                1,
                1,
                f"MI-{rank}",
                "radon",
                "warning" if rank == "C" else "info",
                f"maintainability index {mi:.1f} (rank {rank}): hard to maintain",
            )
        )
    return findings, {"mi": round(mi, 2), "mi_rank": rank, "complexity": complexity}


def _flatten(blocks: Iterable[Any]) -> Iterable[Any]:
    # cc_visit lists classes with their methods inside; closures sit in ``closures``.
    for block in blocks:
        yield block
        yield from _flatten(getattr(block, "closures", ()) or ())
        if hasattr(block, "methods"):
            yield from (m for m in block.methods if m not in blocks)
