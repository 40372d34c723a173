"""The report (table and JSON) and the progress display."""

from __future__ import annotations

import io
import json

from codeloop.evals.progress import Progress
from codeloop.evals.report import build_report
from codeloop.evals.results import SavedResult


def _results() -> list[SavedResult]:
    return [
        SavedResult("HumanEval/0", 0, True, "passed"),
        SavedResult("HumanEval/0", 1, False, "failed: AssertionError"),
        SavedResult("HumanEval/1", 0, False, "timed out"),
        SavedResult("HumanEval/1", 1, False, "failed: SyntaxError: invalid syntax (<cell 2>, line 3)"),
    ]


def test_json_has_the_documented_keys() -> None:
    report = build_report("humaneval", _results(), [1, 2, 5], "r.jsonl", settings={"mode": "plain"}, timings={"check_seconds": 1.5})
    data = json.loads(json.dumps(report.to_json()))
    assert (data["problems"], data["samples"], data["passed"]) == (2, 4, 1)
    assert data["pass@1"] == 0.25 and data["pass@2"] == 0.5 and data["pass@5"] is None
    assert data["failures"] == {"AssertionError": 1, "timed out": 1, "SyntaxError": 1}
    assert data["settings"] == {"mode": "plain"} and data["results"] == "r.jsonl"


def test_table() -> None:
    text = build_report("humaneval", _results(), [1, 5], "r.jsonl", settings={"mode": "repair", "seed": None}).format_table()
    lines = text.splitlines()
    assert lines[0].split() == ["benchmark", "humaneval"]
    assert "pass@1  " in text and "25.0%" in text and "n/a (too few samples)" in text
    assert not any(line.startswith("seed") for line in lines)  # unset settings are left out


def test_progress_on_a_terminal_redraws_one_line() -> None:
    stream = io.StringIO()
    bar = Progress(4, "check", stream=stream, tty=True)
    for _ in range(4):
        bar.advance(note="ok")
    out = stream.getvalue()
    assert out.count("\r") == 4 and out.endswith("\n") and out.count("\n") == 1
    assert "[########################] check: 4/4 (100%)" in out


def test_progress_without_a_terminal_prints_few_plain_lines() -> None:
    stream = io.StringIO()
    bar = Progress(100, "generate", stream=stream, tty=False, every=3600)
    for _ in range(100):
        bar.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("generate: 100/100") and "\r" not in stream.getvalue()


def test_progress_can_be_off() -> None:
    stream = io.StringIO()
    bar = Progress(3, "x", stream=stream, enabled=False)
    bar.advance()
    bar.close()
    assert stream.getvalue() == ""
