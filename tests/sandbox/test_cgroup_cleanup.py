"""The cleanup of stale session cgroups tolerates other codeloop processes cleaning up at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeloop.sandbox.jail import cgroups


def test_a_stale_group_removed_meanwhile_by_another_process_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in a real run: two processes started together, one listed a dead process's group and
    the other removed it before the first looked inside; the FileNotFoundError stopped the run."""
    gone = tmp_path / "codeloop-2147483646"  # a pid that is not running, and a group already removed
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter([gone]))
    cgroups._remove_stale(tmp_path)  # no error


def test_stale_groups_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import os

    dead = tmp_path / "codeloop-2147483646"
    (dead / "s1-abc").mkdir(parents=True)
    alive = tmp_path / f"codeloop-{os.getpid()}"
    alive.mkdir()
    cgroups._remove_stale(tmp_path)
    assert not dead.exists() and alive.exists()
