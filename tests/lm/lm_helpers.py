"""Helpers of the lm tests: the tiny corpus and configuration, and the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

STDLIB = Path(sysconfig.get_paths()["stdlib"])
#: ~0.7 MB of real Python, small enough that a tiny model learns it in seconds on 1-2 threads
CORPUS = [str(STDLIB / "asyncio")]

TINY = [
    "--corpus",
    *CORPUS,
    "--heldout",
    "0.15",
    "--vocab-size",
    "512",
    "--context",
    "64",
    "--d-model",
    "64",
    "--layers",
    "2",
    "--heads",
    "4",
    "--batch-size",
    "16",
    "--lr",
    "3e-3",
    "--warmup",
    "10",
    "--eval-tokens",
    "4096",
    "--threads",
    "1",
]


def codeloop(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args], capture_output=True, text=True, timeout=timeout
    )


def last_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
