"""bench/server_load.py works end to end (tiny numbers; the figures come from the benchmark itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "server_load.py"


@pytest.mark.slow
def test_the_load_benchmark_runs_clean() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--clients", "4", "--cells", "6", "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = {r["name"]: r for r in result["rows"]}
    assert len(rows) == 3
    for row in rows.values():
        assert row["errors"] == 0 and row["sessions_left"] == 0 and row["cells"] == 24
    assert result["throughput_ratio_run_to_http_floor"] > 0
    assert "command:" in done.stdout and "environment:" in done.stdout
