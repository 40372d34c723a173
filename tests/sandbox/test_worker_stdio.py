"""The worker's stdio repair in a process of its own, where fds 1 and 2 can be broken on purpose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from codeloop.sandbox.launcher import WORKER_SCRIPT

# Loads worker.py by path (as the worker runs), breaks fd 1 for good (a pipe whose reader is
# gone: every write fails with EPIPE), leaves a partial line in the buffer and repairs.
BROKEN_FOR_GOOD = r"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("codeloop_worker", sys.argv[1])
worker = importlib.util.module_from_spec(spec)
sys.modules["codeloop_worker"] = worker
spec.loader.exec_module(worker)
r, w = os.pipe()
os.close(r)
os.dup2(w, 1)
stdio = worker._Stdio()
old = sys.stdout
print("stuck", end="")
notes = []
stdio.end_cell(notes)
stdio.repair()
first_new = sys.stdout is not old and old in worker._keep
notes_again = []
stdio.end_cell(notes_again)  # the retired stream is never flushed again, so nothing more to say
stdio.repair()
with open(sys.argv[2], "w") as f:
    json.dump({"notes": notes, "replaced": first_new, "again": notes_again}, f)
"""


def test_output_that_can_never_be_written_is_dropped_with_a_note(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-I", "-c", BROKEN_FOR_GOOD, str(WORKER_SCRIPT), str(report)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert result["replaced"]
    assert any("was dropped" in note for note in result["notes"]), result
    assert result["again"] == [], result
