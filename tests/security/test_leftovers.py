"""The sweep of holders left by killed codeloop processes removes only what it can prove stale.

Real sessions in a root of our own: a host process that opened a Sandbox there and was
SIGKILLed leaves its holder; the sweep removes that one and nothing else: not a live session of
another process, not a link planted in the dead session (its canary stays), not a holder owned
by another uid or with a lock file that is missing, wrong, a link or names another directory,
not a look-alike. Every verdict is the host's own view of what this test made.
"""

from __future__ import annotations

import contextlib
import json
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
from hostside import SANDBOX_PYTHON, alive

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
    assert got[old.name][0] == leftovers.REMOVED and not old.exists(), got[old.name]
    assert _canary_intact(canary)
    assert got[busy.name] == (leftovers.SKIPPED, f"no holder.lock, and process {sleeper.pid} works in it")
    assert got[odd.name][0] == leftovers.SKIPPED and "holds 'other'" in got[odd.name][1]
    assert got[young.name][0] == leftovers.SKIPPED and "changed" in got[young.name][1]
    assert busy.is_dir() and odd.is_dir() and young.is_dir()


# --- a jail's private /tmp in a holder of its own -----------------------------------------------

#: The cell of a worker whose host will be killed: data, links to the canary (CANARY) and a lock
#: look-alike in its private /tmp (a regular file with codeloop's first line, flocked by a child it
#: forks when FORK, which outlives the worker), then tries to replace, remove or add to the holder
#: (when it runs as a session uid: a worker with the host's own uid could, as the host user can).
_TMP_CELL = """
import fcntl, json, os, time
tmp = os.environ["TMPDIR"]
holder = os.path.dirname(tmp)
open(os.path.join(tmp, "data.txt"), "w").write("worker data")
os.mkdir(os.path.join(tmp, "sub"))
os.symlink(CANARY, os.path.join(tmp, "to-canary"))
os.symlink(os.path.join(CANARY, "keep.txt"), os.path.join(tmp, "sub", "to-keep"))
os.symlink(os.path.join(CANARY, "keep.txt"), os.path.join(tmp, "sub", "holder.lock"))
fake = os.open(os.path.join(tmp, "holder.lock"), os.O_RDWR | os.O_CREAT, 0o600)
os.write(fake, b"codeloop session holder v1\\npid 1\\n")
fcntl.flock(fake, fcntl.LOCK_EX)
child = os.fork() if FORK else 0
if FORK and child == 0:
    time.sleep(120)
    os._exit(0)
could = []  # tried only where the holder is not the worker's own (a session uid)
tries = {} if os.stat(holder).st_uid == os.getuid() else {
    "replace the lock": lambda: os.rename(os.path.join(tmp, "holder.lock"), os.path.join(holder, "holder.lock")),
    "remove the lock": lambda: os.unlink(os.path.join(holder, "holder.lock")),
    "add to the holder": lambda: os.symlink(CANARY, os.path.join(holder, "planted")),
}
for what, act in tries.items():
    try:
        act()
        could.append(what)
    except OSError:
        pass
json.dumps([tmp, os.getuid(), child, could])
"""

#: A host process that starts one jailed worker through the launch API on a session directory of
#: its own (not in a holder) with no mount namespace (simulated where bubblewrap works), so the
#: jail's private /tmp gets a holder of its own in the system temp directory (TMPDIR: the test's
#: root). Runs _TMP_CELL, prints what it did; a line on stdin closes it normally.
_TMP_OWNER = """
import json, sys, threading, time
from pathlib import Path
from codeloop.sandbox import layers
from codeloop.sandbox.exchange import Capture, Ending, exchange
from codeloop.sandbox.jail import jailer
from codeloop.sandbox.launcher import WORKER_SCRIPT, LaunchSpec, build_launch
from codeloop.sandbox.protocol import encode_limits, encode_run_request
from codeloop.sandbox.spawn import spawn_worker

work, python, cell = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
lacking = layers.probe_host().without("namespaces", "simulated").without("cgroups", "simulated")
jailer.probe_host = lambda: lacking
launch = build_launch(LaunchSpec(python=python, worker=WORKER_SCRIPT, session_dir=work))
proc = spawn_worker(launch)
for t in threading.enumerate():
    if t.name == "codeloop-sweep":  # its own sweep of TMPDIR, started by the jail
        t.join()
nonce = "n1".ljust(16, "0")
request = encode_run_request(nonce, cell, 1, encode_limits(1000, 10, 50))
outcome = exchange(proc, request, nonce, time.monotonic() + 30, Capture(4096, 1 << 20, None))
assert outcome.ending is Ending.REPLY and outcome.reply is not None, outcome
assert outcome.reply["status"] == "ok", outcome.reply
tmp, uid, child, could = json.loads(eval(outcome.reply["value"]))
print(json.dumps({"uid_layer": launch.isolation["uid"], "tmp": tmp, "uid": uid, "child": child, "could": could}), flush=True)
sys.stdin.readline()
proc.stop(0.5)
proc.close()
print("closed", flush=True)
"""


class TmpOwner(Owner):
    """A separate host process with a live jailed worker whose private /tmp has its own holder."""

    def __init__(self, root: Path, work: Path, canary: Path, *, fork: bool = False) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TMPDIR": str(root),
        }
        python = "/usr/bin/python3" if os.geteuid() == 0 else sys.executable  # a session uid must reach it
        cell = _TMP_CELL.replace("CANARY", repr(str(canary))).replace("FORK", repr(fork))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TMP_OWNER, str(work), python, cell],
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
        said = json.loads(line)
        self.tmp = Path(said["tmp"])
        self.holder = self.tmp.parent
        self.uid_layer: bool = said["uid_layer"]
        self.child: int = said["child"]
        self.could: list[str] = said["could"]

    def stop(self) -> None:
        super().stop()
        if getattr(self, "child", 0):  # the worker's child the test asked for, by its pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGKILL)


def _work_dir(root: Path, name: str) -> Path:
    """A session directory of the caller's own (not in a holder), private as a session uid needs."""
    work = root / name
    work.mkdir(mode=0o700)
    return work


def test_a_killed_host_s_private_tmp_is_swept_and_a_live_one_kept(
    root: Path, owners: list[Owner], canary: Path
) -> None:
    """The private /tmp of a jail on a session directory outside any holder (the low-level launch
    API, no mount namespace) used to be ``codeloop-tmp-XXXX`` in the temp directory, left for good
    when the host was SIGKILLed. It now has a holder of its own, locked like a session's: the
    sweep removes the dead host's, not the live host's, and never follows the worker's links; a
    lock look-alike the worker made and flocks (from a child that outlives it) changes nothing."""
    live = TmpOwner(root, _work_dir(root, "work-live"), canary)
    owners.append(live)
    dead = TmpOwner(root, _work_dir(root, "work-dead"), canary, fork=True)
    owners.append(dead)
    assert live.holder.parent == dead.holder.parent == root
    assert live.holder.name.startswith("codeloop-") and live.tmp.name.startswith(hostfs.TMP_PREFIX)
    assert live.uid_layer or os.geteuid() != 0  # root's worker never runs as root on the host's files
    if live.uid_layer:  # the worker runs as a session uid: the holder and its lock are not its own
        assert live.could == [] and dead.could == []
    assert not list(root.glob("codeloop-tmp-*"))
    dead.kill()
    assert dead.child and alive(dead.child)  # the look-alike's flock outlives the host
    assert (dead.holder / hostfs.HOLDER_LOCK).is_file() and (dead.tmp / "data.txt").is_file()  # left
    live_before = _snapshot(live.holder)

    dry = _verdicts(leftovers.sweep(root, dry_run=True))
    assert dry[dead.holder.name][0] == leftovers.WOULD_REMOVE, dry
    got = _verdicts(leftovers.sweep(root))
    assert got[dead.holder.name][0] == leftovers.REMOVED and "gone" in got[dead.holder.name][1], got
    assert not dead.holder.exists()
    assert _canary_intact(canary) and sorted(p.name for p in canary.iterdir()) == ["keep.txt"]
    assert got[live.holder.name] == (leftovers.SKIPPED, "in use: its owner holds the lock")
    assert _snapshot(live.holder) == live_before
    assert set(got) == {live.holder.name, dead.holder.name}  # work-* are not candidates

    assert live.close() == "closed"  # a normal close removes the holder with the /tmp
    assert not live.holder.exists()
    assert sorted(p.name for p in root.iterdir()) == ["work-dead", "work-live"]


def test_a_private_tmp_holder_is_locked_while_its_jail_lives(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: a jail without a mount namespace on a directory outside any holder makes its /tmp
    in a locked holder of its own in the temp directory; close() removes the holder and lets go."""
    from codeloop.sandbox import layers
    from codeloop.sandbox.jail import jailer, policy

    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setattr(leftovers, "_last", {str(root): time.monotonic()})  # no background sweep here
    lacking = layers.probe_host().without("namespaces", "simulated").without("cgroups", "simulated")
    python = "/usr/bin/python3" if os.geteuid() == 0 else sys.executable
    jail = jailer.WorkerJail(policy.JailPolicy(session_dir=_work_dir(root, "work"), python=python), host=lacking)
    try:
        assert jail.state.tmpdir is not None
        tmp = Path(jail.state.tmpdir)
        assert tmp.parent.parent == root and (tmp.parent / hostfs.HOLDER_LOCK).is_file()
        assert stat.S_IMODE(tmp.parent.stat().st_mode) == hostfs.HOLDER_MODE
        if jail.uid_lease is not None:
            assert tmp.stat().st_uid == jail.uid_lease.uid
        assert _verdicts(leftovers.sweep(root))[tmp.parent.name] == (
            leftovers.SKIPPED,
            "in use: its owner holds the lock",
        )
    finally:
        jail.close()
    assert not tmp.parent.exists() and str(tmp.parent) not in hostfs._held
    with pytest.raises(codeloop.SandboxError, match="not a private /tmp"):
        hostfs.remove_private_tmp(root / "work")
    assert (root / "work").is_dir()


def test_legacy_private_tmps_only_on_request_old_enough_and_unused(root: Path, canary: Path) -> None:
    """``codeloop-tmp-XXXXXXXX`` of codeloop versions before the holder were never locked: only a
    legacy sweep removes one, by descriptor (the canary its links point to stays), when it is a
    real directory of ours (or of a session uid, for root), mode 0700, old, and nobody uses it."""

    def old_tmp(name: str, mode: int = 0o700, uid: int | None = None) -> Path:
        path = root / name
        path.mkdir()
        (path / "deep" / "er").mkdir(parents=True)
        (path / "deep" / "er" / "f").write_text("x")
        os.symlink(canary, path / "to-canary")
        os.symlink(canary / "keep.txt", path / "deep" / "to-keep")
        if uid is not None:
            for sub in (path / "deep" / "er" / "f", path / "deep" / "er", path / "deep", path):
                os.chown(sub, uid, uid)
        path.chmod(mode)
        long_ago = time.time() - 7200
        for entry in [*path.iterdir(), path]:
            os.utime(entry, (long_ago, long_ago), follow_symlinks=False)
        return path

    old = old_tmp("codeloop-tmp-old_0000")
    busy = old_tmp("codeloop-tmp-busy0000")
    odd_mode = old_tmp("codeloop-tmp-mode0000", mode=0o755)
    young = root / "codeloop-tmp-young000"
    young.mkdir(mode=0o700)
    os.symlink(canary, root / "codeloop-tmp-link0000")
    kept = {name: _snapshot(root / name) for name in ("codeloop-tmp-busy0000", "codeloop-tmp-mode0000")}
    session_owned = other_owned = None
    if os.geteuid() == 0:
        session_owned = old_tmp("codeloop-tmp-uid00000", uid=uids.UID_BASE + 4243)
        other_owned = old_tmp("codeloop-tmp-uid00001", uid=12345)
    # an idle worker of an older codeloop: its working directory elsewhere, only its TMPDIR there
    sleeper = subprocess.Popen(["sleep", "60"], cwd=root, env={**os.environ, "TMPDIR": str(busy)})
    try:
        plain = _verdicts(leftovers.sweep(root))
        assert all(action == leftovers.SKIPPED for action, _ in plain.values()), plain
        assert "older codeloop" in plain[old.name][1] and "--legacy" in plain[old.name][1]
        assert "codeloop-tmp-link0000" in plain
        got = _verdicts(leftovers.sweep(root, legacy=True, older_than=3600))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert got[old.name][0] == leftovers.REMOVED and not old.exists(), got[old.name]
    assert _canary_intact(canary) and sorted(p.name for p in canary.iterdir()) == ["keep.txt"]
    assert got[busy.name] == (leftovers.SKIPPED, f"a private /tmp of an older codeloop, and process {sleeper.pid} works in it")
    assert got[odd_mode.name][0] == leftovers.SKIPPED and "mode 0o755" in got[odd_mode.name][1]
    assert got[young.name][0] == leftovers.SKIPPED and "changed" in got[young.name][1] and young.is_dir()
    assert got["codeloop-tmp-link0000"][0] == leftovers.SKIPPED and "not a directory" in got["codeloop-tmp-link0000"][1]
    assert (root / "codeloop-tmp-link0000").is_symlink()
    for name, before in kept.items():
        assert _snapshot(root / name) == before, name
    if session_owned is not None and other_owned is not None:
        assert got[session_owned.name][0] == leftovers.REMOVED and not session_owned.exists()
        assert got[other_owned.name][0] == leftovers.SKIPPED and "owned by uid 12345" in got[other_owned.name][1]
        assert other_owned.is_dir()
