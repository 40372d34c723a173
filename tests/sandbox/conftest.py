"""Sandbox tests: real worker processes, an isolated user dir, and /proc helpers to prove cleanup."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeloop.sandbox import Sandbox


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(timeout=20.0) as sandbox:
        yield sandbox


class ProcTools:
    """/proc helpers, handed to tests through the ``procs`` fixture."""

    @staticmethod
    def table() -> dict[int, tuple[int, int]]:
        return process_table()

    @staticmethod
    def tree(root: int) -> set[int]:
        return process_tree(root)

    @staticmethod
    def alive(pids: set[int], settle: float = 2.0) -> set[int]:
        """Those still running after up to ``settle`` seconds: SIGKILLed processes (the worker's
        children, a jail's inner processes) finish dying asynchronously, in milliseconds."""
        deadline = time.monotonic() + settle
        left = alive(pids)
        while left and time.monotonic() < deadline:
            time.sleep(0.01)
            left = alive(left)
        return left


@pytest.fixture
def procs() -> type[ProcTools]:
    return ProcTools


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, pgid) of every process now (zombies included)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def process_tree(root: int) -> set[int]:
    """root and all its descendants, from /proc."""
    table = process_table()
    tree = {root} if root in table else set()
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in table.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def alive(pids: set[int]) -> set[int]:
    """Those of pids that still run. Zombies count as gone: an orphan (a jail's inner process whose
    parent died first) waits for init to reap it, and holds nothing but its pid meanwhile."""
    running = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "ZX":
            running.add(pid)
    return running


def group_members(pgid: int) -> set[int]:
    return {pid for pid, (_, group) in process_table().items() if group == pgid}
