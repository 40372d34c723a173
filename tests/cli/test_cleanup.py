"""``codeloop cleanup``: removes the holder of a killed process, reports what it left and why."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import codeloop
from codeloop.cli.cleanup_cmd import duration

_SRC = str(Path(codeloop.__file__).resolve().parents[1])


def codeloop_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="codeloop-test-cleanup-"))
    yield path
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def _killed_owner(root: Path) -> Path:
    """The holder of a host process that made a session directory in ``root`` and was SIGKILLed."""
    code = "import sys, time\nfrom codeloop.sandbox.hostfs import new_session_dir\n"
    code += "print(new_session_dir(sys.argv[1]), flush=True)\ntime.sleep(60)\n"
    env = {**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with subprocess.Popen(
        [sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        session = Path(proc.stdout.readline().strip())
        os.kill(proc.pid, signal.SIGKILL)
    assert session.is_dir()
    return session.parent


def test_cleanup_removes_a_killed_owner_s_holder_and_says_why_it_left_the_rest(root: Path) -> None:
    holder = _killed_owner(root)
    legacy = root / "codeloop-abcdefgh"
    (legacy / "session").mkdir(parents=True)
    legacy.chmod(0o711)

    dry = codeloop_cli("cleanup", "--root", str(root), "--dry-run", "-v")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove: {holder}: its owner (pid " in dry.stdout
    assert f"skipped: {legacy}: no holder.lock" in dry.stdout
    assert dry.stdout.splitlines()[-1] == f"codeloop cleanup: {root}: 1 would be removed, 1 left"
    assert holder.is_dir()

    done = codeloop_cli("cleanup", "--root", str(root), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"removed": 1, "would remove": 0, "skipped": 1, "failed": 0}
    assert [v["action"] for v in report["verdicts"] if v["path"] == str(holder)] == ["removed"]
    assert not holder.exists() and (legacy / "session").is_dir()

    too_young = codeloop_cli("cleanup", "--root", str(root), "--legacy", "--older-than", "30s")
    assert too_young.returncode == 2 and "at least 60 s" in too_young.stderr
    kept = codeloop_cli("cleanup", "--root", str(root), "--legacy")  # made just now: under the default hour
    assert kept.returncode == 0 and (legacy / "session").is_dir()
    assert kept.stdout.splitlines()[-1].endswith("0 removed, 1 left (-v says why each was left)")


def test_cleanup_legacy_removes_an_old_private_tmp_of_an_older_codeloop(root: Path) -> None:
    """``codeloop-tmp-XXXXXXXX`` (a jail's private /tmp before it had a holder): reported and left
    by default, removed by ``--legacy`` once older than ``--older-than``."""
    old = root / "codeloop-tmp-abcd1234"
    (old / "sub").mkdir(parents=True, mode=0o700)
    (old / "sub" / "f").write_text("x")
    old.chmod(0o700)
    long_ago = time.time() - 7200
    for path in (old / "sub" / "f", old / "sub", old):
        os.utime(path, (long_ago, long_ago))

    left = codeloop_cli("cleanup", "--root", str(root), "-v")
    assert left.returncode == 0, left.stderr
    assert f"skipped: {old}: a private /tmp of an older codeloop (never locked" in left.stdout
    assert old.is_dir()
    done = codeloop_cli("cleanup", "--root", str(root), "--legacy", "--older-than", "1h")
    assert done.returncode == 0, done.stderr
    assert f"removed: {old}: a private /tmp of an older codeloop (no lock), unchanged for" in done.stdout
    assert not old.exists() and list(root.iterdir()) == []


def test_durations() -> None:
    assert duration("90") == 90 and duration("90s") == 90 and duration("30m") == 1800
    assert duration("2h") == 7200 and duration("1d") == 86400 and duration("1.5h") == 5400
    for bad in ("", "h", "-5m", "5 minutes", "59s"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)
