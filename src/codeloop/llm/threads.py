"""How many threads llama.cpp should use right now, given what else wants the CPUs.

llama.cpp synchronises its threads hundreds of times per token. When other processes keep
the cores busy, a thread that loses its core stalls every barrier, and two threads decode
several times slower than one (measured here with SmolLM2 on 2 busy cores: 3-9 tok/s with
2 threads against 20-30 tok/s with 1). So the thread count is picked per call, and again
every few tokens: the configured maximum when cores are free, fewer when they are not.
"""

from __future__ import annotations

import os

__all__ = ["free_cpus", "pick_threads"]


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def free_cpus() -> int | None:
    """CPUs not wanted by other runnable tasks now (``/proc/loadavg``); None when unknown."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            runnable = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    others = max(0, runnable - 1)  # the task reading this counts itself
    return max(0, _usable_cpus() - others)


def pick_threads(maximum: int) -> int:
    """``maximum`` when enough CPUs are free, else as many as are free (at least one)."""
    free = free_cpus()
    if free is None:
        return maximum
    return max(1, min(maximum, free))
