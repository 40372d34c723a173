"""Thread picking: fewer llama.cpp threads while other processes keep every CPU busy."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from codeloop.llm.threads import free_cpus, pick_threads


def test_free_cpus_is_within_the_usable_cpus() -> None:
    free = free_cpus()
    assert free is not None
    assert 0 <= free <= len(os.sched_getaffinity(0))
    assert 1 <= pick_threads(2) <= 2
    assert pick_threads(1) == 1


def test_busy_cpus_mean_one_thread() -> None:
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(len(os.sched_getaffinity(0)) + 1)
    ]
    try:
        time.sleep(0.5)  # all spinners are running: each is a runnable task from now on
        assert free_cpus() == 0
        assert pick_threads(4) == 1
    finally:
        for p in spinners:
            p.kill()
            p.wait()
