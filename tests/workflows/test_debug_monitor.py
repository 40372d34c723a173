"""The standalone script ``codeloop debug`` ships into the sandbox: the monitor with the shared tracer code.

The monitor inside the real sandbox is exercised by test_debug.py; this checks the script itself, fast.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from codeloop.sandbox import tracecore
from codeloop.workflows.debug import LIMITS
from codeloop.workflows.debug_monitor import script_source


def test_the_script_stands_alone_and_records_bounded_events(tmp_path: Path) -> None:
    text = script_source()
    tree = ast.parse(text)
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("codeloop") for m in modules if m != "codeloop.sandbox")  # only script_source's lazy import
    assert tracecore.source() in text and "class LineRecorder" in text
    (tmp_path / "project").mkdir()
    (tmp_path / "fix").mkdir()
    monitor = tmp_path / "fix" / "monitor.py"
    monitor.write_text(text)
    (tmp_path / "project" / "job.py").write_text(
        "def total(items):\n    acc = 0\n    for x in items:\n        acc += 100 // x\n    return acc\n"
        "print(total(list(range(50, 0, -1)) + [0]))\n")
    config = {"script": str(tmp_path / "project" / "job.py"), "root": str(tmp_path / "project"), "args": [],
              "limits": dict(LIMITS, timeout=20.0), "output": str(tmp_path / "fix" / "out.json")}
    (tmp_path / "fix" / "config.json").write_text(json.dumps(config))
    # -I: no site packages, no PYTHONPATH, the way the jailed worker runs: codeloop cannot be imported
    proc = subprocess.run([sys.executable, "-I", str(monitor), str(tmp_path / "fix" / "config.json")],
                          cwd=tmp_path / "project", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "fix" / "out.json").read_text())
    assert record["status"] == "exception" and record["exception"]["type"] == "ZeroDivisionError"
    assert len(record["head"]) == LIMITS["head"] and len(record["tail"]) == LIMITS["tail"]
    assert record["events"] > LIMITS["head"] + LIMITS["tail"]
    assert record["head"][0] == {"file": "job.py", "line": 0, "fn": "<module>", "call": {}}
    assert record["tail"][-2]["exc"] == "ZeroDivisionError" and record["tail"][-2]["line"] == 4
    assert record["frames"][-1]["function"] == "total" and record["frames"][-1]["locals"]["x"] == "0"
