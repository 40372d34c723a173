"""The sweep of holders left by killed codeloop processes removes only what it can prove stale.

Real sessions in a root of our own: a host process that opened a Sandbox there and was
SIGKILLed leaves its holder; the sweep removes that one and nothing else: not a live session of
another process, not a link planted in the dead session (its canary stays), not a holder owned
by another uid or with a lock file that is missing, wrong, a link or names another directory,
not a look-alike. Every verdict is the host's own view of what this test made.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostside import SANDBOX_PYTHON

import codeloop
from codeloop.sandbox import hostfs, leftovers
from codeloop.sandbox.jail import uids

_SRC = str(Path(codeloop.__file__).resolve().parents[1])

#: a host process owning one session in ROOT: prints its directory once its own sweep is done,
#: then waits; a line on stdin closes the session normally
_OWNER = """
import sys, threading
from codeloop import Sandbox
sb = Sandbox(root=sys.argv[1], prestart=False, timeout=10, **eval(sys.argv[2]))
assert sb.run("open('data.txt', 'w').write('session data')").ok
for t in threading.enumerate():
    if t.name == "codeloop-sweep":
        t.join()
print(sb.workdir, flush=True)
sys.stdin.readline()
sb.close()
print("closed", flush=True)
"""


class Owner:
    """A separate host process with a live session in ``root``."""

    def __init__(self, root: Path) -> None:
        env = {**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _OWNER, str(root), repr(SANDBOX_PYTHON)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            self.stop()
            raise AssertionError(f"the owner process failed (exit {self.proc.returncode})")
        self.workdir = Path(line)
        self.holder = self.workdir.parent

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        said = self.proc.stdout.readline().strip()
        self.proc.wait(10)
        return said

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def root() -> Iterator[Path]:
    """A sandbox root of our own, directly in /tmp and mode 0755 (a session uid must reach it on a
    host without namespaces); every holder in it is made by this test."""
    path = Path(tempfile.mkdtemp(prefix="codeloop-test-sweep-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


@pytest.fixture
def owners() -> Iterator[list[Owner]]:
    started: list[Owner] = []
    yield started
    for owner in started:
        owner.stop()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A directory outside every root, with a file: links planted in sessions point here."""
    path = tmp_path / "canary"
    path.mkdir()
    path.chmod(0o755)
    (path / "keep.txt").write_text("keep")
    return path


def _canary_intact(canary: Path) -> bool:
    return (canary / "keep.txt").read_text() == "keep" and stat.S_IMODE(canary.stat().st_mode) == 0o755


def _fake(
    root: Path,
    name: str,
    lock: str | bytes | None = None,
    *,
    mode: int = 0o711,
    entries: tuple[str, ...] = ("session",),
) -> Path:
    """A holder made by this test: ``entries`` as directories, ``lock`` as its lock file's text."""
    holder = root / name
    holder.mkdir()
    for entry in entries:
        (holder / entry).mkdir(mode=0o700)
    if lock is not None:
        (holder / hostfs.HOLDER_LOCK).write_bytes(lock.encode() if isinstance(lock, str) else lock)
        (holder / hostfs.HOLDER_LOCK).chmod(0o600)
    holder.chmod(mode)
    return holder


def _lock_text(holder: Path, pid: int = 1) -> str:
    st = holder.stat()
    return f"{hostfs.HOLDER_MAGIC}\npid {pid}\ncreated {time.time():.6f}\nholder {st.st_dev}:{st.st_ino}\n"


def _verdicts(report: leftovers.SweepReport) -> dict[str, tuple[str, str]]:
    return {Path(v.path).name: (v.action, v.reason) for v in report.verdicts}


def _snapshot(path: Path) -> list[tuple[str, int, int, bool]]:
    """Every entry under ``path`` (not following links): name, mode, owner, whether a link."""
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            found.append((os.path.join(dirpath, name), st.st_mode, st.st_uid, stat.S_ISLNK(st.st_mode)))
    return sorted(found)


def test_a_killed_owner_s_holder_is_swept_and_nothing_else(
    root: Path, owners: list[Owner], canary: Path
) -> None:
    live = Owner(root)
    owners.append(live)
    dead = Owner(root)
    owners.append(dead)
    dead.kill()
    assert (dead.holder / hostfs.HOLDER_LOCK).is_file() and (
        dead.workdir / "data.txt"
    ).is_file()  # left behind
    os.symlink(canary, dead.workdir / "to-canary")
    os.symlink(canary / "keep.txt", dead.workdir / "to-keep")

    fakes = {
        "codeloop-nolock00": _fake(root, "codeloop-nolock00"),  # an older codeloop's, or one being made
        "codeloop-badlock0": _fake(root, "codeloop-badlock0", "hello\n"),
        "codeloop-emptylck": _fake(root, "codeloop-emptylck", ""),  # its maker has not written it yet
        "codeloop-otherdir": _fake(
            root, "codeloop-otherdir", _lock_text(dead.holder)
        ),  # names another holder
        "codeloop-modebad0": _fake(root, "codeloop-modebad0", mode=0o755),
        "codeloop-extra000": _fake(root, "codeloop-extra000", entries=("session", "notes")),
    }
    for name in ("codeloop-modebad0", "codeloop-extra000"):
        (fakes[name] / hostfs.HOLDER_LOCK).write_text(_lock_text(fakes[name]))
    linked = _fake(root, "codeloop-linklock")
    os.symlink(canary / "keep.txt", linked / hostfs.HOLDER_LOCK)
    fakes["codeloop-linklock"] = linked
    (root / "codeloop-x").mkdir()  # a look-alike name: not even a candidate
    (root / "codeloop-x" / "session").mkdir()
    if os.geteuid() == 0:  # a valid-looking holder of another uid (made here, handed over here)
        other = _fake(root, "codeloop-otheruid")
        (other / hostfs.HOLDER_LOCK).write_text(_lock_text(other))
        os.chown(other / hostfs.HOLDER_LOCK, uids.UID_BASE + 4242, uids.UID_BASE + 4242)
        os.chown(other, uids.UID_BASE + 4242, uids.UID_BASE + 4242)
        fakes["codeloop-otheruid"] = other
    before = {name: _snapshot(path) for name, path in fakes.items()}
    live_before = _snapshot(live.holder)

    dry = _verdicts(leftovers.sweep(root, dry_run=True))
    assert dry[dead.holder.name][0] == leftovers.WOULD_REMOVE, dry
    assert dead.holder.is_dir()
    report = leftovers.sweep(root)
    got = _verdicts(report)
    assert got[dead.holder.name][0] == leftovers.REMOVED, got
    assert "gone" in got[dead.holder.name][1]
    assert not dead.holder.exists()
    assert _canary_intact(canary)

    assert got[live.holder.name] == (leftovers.SKIPPED, "in use: its owner holds the lock")
    assert _snapshot(live.holder) == live_before
    assert "codeloop-x" not in got and (root / "codeloop-x" / "session").is_dir()
    reasons = {
        "codeloop-nolock00": "no holder.lock",
        "codeloop-badlock0": "does not say codeloop made it",
        "codeloop-emptylck": "does not say codeloop made it",
        "codeloop-otherdir": "names another directory",
        "codeloop-modebad0": "mode 0o755",
        "codeloop-extra000": "holds 'notes'",
        "codeloop-linklock": "not a regular file",
        "codeloop-otheruid": "owned by uid",
    }
    for name, path in fakes.items():
        assert got[name][0] == leftovers.SKIPPED and reasons[name] in got[name][1], (name, got[name])
        assert _snapshot(path) == before[name], name
    assert dry == {**got, dead.holder.name: dry[dead.holder.name]}  # the dry run said the same
    assert len(report.of(leftovers.REMOVED)) == 1 and report.complete

    assert live.close() == "closed"  # the live session was never disturbed: it closes normally
    assert not live.holder.exists()


def test_a_new_session_sweeps_a_dead_owner_s_holder_by_itself(
    root: Path, owners: list[Owner], open_sandbox: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = Owner(root)
    owners.append(dead)
    dead.kill()
    assert dead.holder.is_dir()
    monkeypatch.setattr(leftovers, "_last", {})  # this process may have swept this root's path already
    sb = open_sandbox(root=root)  # type: ignore[operator]
    for thread in threading.enumerate():
        if thread.name == "codeloop-sweep":
            thread.join(10)
    assert not dead.holder.exists()
    assert sb.workdir.is_dir() and sb.run("1 + 1").value == "2"
    assert str(root) in leftovers._last
    leftovers.sweep_soon(root)  # rate-limited: no second sweep of this root within the interval
    assert not any(t.name == "codeloop-sweep" for t in threading.enumerate())


def test_a_live_session_s_lock_survives_a_forked_child(root: Path) -> None:
    """A child forked from the host closes its copies of the lock descriptors; the parent's lock
    stays held (a child never unlocks), and closing the session lets go of it."""
    session = hostfs.new_session_dir(root)
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not hostfs._held else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _verdicts(leftovers.sweep(root))[session.parent.name][0] == leftovers.SKIPPED
    finally:
        hostfs.remove_session(session)
    assert list(root.iterdir()) == [] and str(session.parent) not in hostfs._held


def test_a_removal_cut_short_leaves_a_holder_the_next_sweep_finishes(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file goes last: when the session cannot be removed (here: opening it fails), the
    holder keeps its lock file, the owner lets go of the lock, and a sweep proves the holder stale
    and finishes it."""
    session = hostfs.new_session_dir(root)
    (session / "sub").mkdir()
    (session / "sub" / "f").write_text("x")
    real_open_dir = hostfs._open_dir

    def failing(parent: int, name: str) -> int | None:
        if name == hostfs.SESSION_NAME:
            raise OSError(5, "simulated I/O error")
        return real_open_dir(parent, name)

    monkeypatch.setattr(hostfs, "_open_dir", failing)
    with pytest.raises(codeloop.SandboxError, match="simulated I/O error"):
        hostfs.remove_session(session)
    monkeypatch.setattr(hostfs, "_open_dir", real_open_dir)
    assert (session.parent / hostfs.HOLDER_LOCK).is_file() and (session / "sub" / "f").is_file()
    assert str(session.parent) not in hostfs._held  # the lock was let go all the same
    assert _verdicts(leftovers.sweep(root))[session.parent.name][0] == leftovers.REMOVED
    assert list(root.iterdir()) == []


def test_legacy_holders_only_on_request_old_enough_and_unused(root: Path, canary: Path) -> None:
    old = _fake(root, "codeloop-legacy00", entries=("session", "tmp-abcd_123"))
    os.symlink(canary, old / "session" / "to-canary")
    busy = _fake(root, "codeloop-legacy01")
    odd = _fake(root, "codeloop-legacy02", entries=("session", "other"))
    young = _fake(root, "codeloop-legacy03")
    long_ago = time.time() - 7200
    for holder in (old, busy, odd):
        for path in [*holder.iterdir(), holder]:
            os.utime(path, (long_ago, long_ago), follow_symlinks=False)
    sleeper = subprocess.Popen(["sleep", "60"], cwd=busy / "session")
    try:
        assert all(v.action == leftovers.SKIPPED for v in leftovers.sweep(root).verdicts)  # never by default
        with pytest.raises(ValueError):
            leftovers.sweep(root, legacy=True, older_than=5)
        got = _verdicts(leftovers.sweep(root, legacy=True, older_than=3600))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert got[old.name][0] == leftovers.REMOVED and not old.exists()
    assert _canary_intact(canary)
    assert got[busy.name] == (leftovers.SKIPPED, f"no holder.lock, and process {sleeper.pid} works in it")
    assert got[odd.name][0] == leftovers.SKIPPED and "holds 'other'" in got[odd.name][1]
    assert got[young.name][0] == leftovers.SKIPPED and "changed" in got[young.name][1]
    assert busy.is_dir() and odd.is_dir() and young.is_dir()
