"""The cleanup of stale session cgroups: a group goes only on proof that its owner is gone.

A process's parent group ``codeloop-<pid>-<token>`` comes with ``<token>.lock`` in a private lock
directory, flocked by its owner while it lives. The sweep removes a group (and kills what is left
in it) only when that lock is free and names the group; never on a pid, which another pid
namespace sharing the parent cgroup would make look dead. The first tests use plain directories
and a lock directory of the test's own; the last ones real cgroups this test creates (root only).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import codeloop
from codeloop.sandbox.jail import cgroups

_SRC = str(Path(codeloop.__file__).resolve().parents[1])
TOKENS = ("0123456789abcdef", "fedcba9876543210", "00112233445566ff", "aabbccddeeff0011", "1111222233334444")


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private lock directory of this test's own, in place of /run/codeloop/cgroups."""
    path = tmp_path / "locks"
    monkeypatch.setattr(cgroups, "_lock_dirs", lambda: (path,))
    return path


def _group(container: Path, name: str, sessions: int = 1) -> Path:
    group = container / name
    group.mkdir()
    for i in range(sessions):
        (group / f"s{i + 1}-abcdef").mkdir()
    return group


def _lock(lock_dir: Path, token: str, *groups: Path, magic: str = cgroups.LOCK_MAGIC) -> Path:
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    path = lock_dir / f"{token}.lock"
    text = f"{magic}\npid 2147483646\ncreated {time.time():.6f}\n" + "".join(f"group {g}\n" for g in groups)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_only_groups_whose_owner_provably_died_are_removed(tmp_path: Path, lock_dir: Path) -> None:
    container = tmp_path / "container"
    container.mkdir()
    live_pid = os.getpid()
    dead = _group(container, f"codeloop-2147483646-{TOKENS[0]}", sessions=2)
    dead_lock = _lock(lock_dir, TOKENS[0], dead, tmp_path / "other-hierarchy" / dead.name)
    live = _group(container, f"codeloop-2147483646-{TOKENS[1]}")  # a pid we cannot see, yet alive
    live_lock = _lock(lock_dir, TOKENS[1], live)
    unproven = _group(container, f"codeloop-2147483646-{TOKENS[2]}")  # no lock file we can see
    wrong = _group(container, f"codeloop-{live_pid}-{TOKENS[3]}")
    _lock(lock_dir, TOKENS[3], container / "somewhere-else")  # free, but it names another group
    forged = _group(container, f"codeloop-2147483646-{TOKENS[4]}")
    (lock_dir / f"{TOKENS[4]}.lock").symlink_to(dead_lock)  # a link in place of the lock file
    old = _group(container, "codeloop-2147483646")  # a codeloop before the lock: no proof, ever

    holder = os.open(live_lock, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # the live owner: another open file holds the lock
        cgroups._remove_stale(container)
        assert live.is_dir() and live_lock.is_file()
    finally:
        os.close(holder)
    assert not dead.exists()
    assert not dead_lock.exists()  # every group it names is gone: the lock file goes too
    for kept in (unproven, wrong, forged, old):
        assert kept.is_dir() and (kept / "s1-abcdef").is_dir(), kept
    assert (lock_dir / f"{TOKENS[3]}.lock").is_file() and dead_lock.parent.is_dir()

    cgroups._remove_stale(container)  # the live owner let go of its lock (it died): now it goes
    assert not live.exists() and not live_lock.exists()


def test_a_lock_file_stays_while_a_group_it_names_remains(tmp_path: Path, lock_dir: Path) -> None:
    """One lock covers the owner's group in every hierarchy (cgroup v1): the sweep of the first
    hierarchy removes its group and keeps the lock file, the second removes the rest."""
    memory, pids = tmp_path / "memory", tmp_path / "pids"
    memory.mkdir()
    pids.mkdir()
    name = f"codeloop-2147483646-{TOKENS[0]}"
    groups = [_group(memory, name), _group(pids, name)]
    lock = _lock(lock_dir, TOKENS[0], *groups)
    cgroups._remove_stale(memory)
    assert not groups[0].exists() and groups[1].is_dir() and lock.is_file()
    cgroups._remove_stale(pids)
    assert not groups[1].exists() and not lock.exists()


def test_lock_files_of_dead_owners_whose_groups_are_gone_are_dropped(tmp_path: Path, lock_dir: Path) -> None:
    """Someone else removed a dead owner's groups (a CI job's cgroup goes with everything in it):
    its free lock file goes at the next probe; a held one, one whose group is still there, one
    being made (empty) and one not ours by name stay."""
    present = _group(tmp_path, f"codeloop-2147483646-{TOKENS[2]}")
    orphan = _lock(lock_dir, TOKENS[0], tmp_path / "gone-memory", tmp_path / "gone-pids")
    held = _lock(lock_dir, TOKENS[1], tmp_path / "gone-too")
    kept = _lock(lock_dir, TOKENS[2], present)
    fresh = lock_dir / f"{TOKENS[3]}.lock"
    fresh.write_text("")
    other = lock_dir / "notes.lock"
    other.write_text(f"{cgroups.LOCK_MAGIC}\npid 1\ncreated 0\ngroup {tmp_path / 'gone'}\n")
    holder = os.open(held, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        cgroups._drop_orphan_locks()
    finally:
        os.close(holder)
    assert not orphan.exists()
    assert held.is_file() and kept.is_file() and fresh.is_file() and other.is_file()


def test_a_stale_group_removed_meanwhile_by_another_process_is_skipped(tmp_path: Path, lock_dir: Path) -> None:
    """Seen in a real run: two processes started together, one listed a dead process's group and
    the other removed it before the first looked inside; the FileNotFoundError stopped the run."""
    gone = tmp_path / f"codeloop-2147483646-{TOKENS[0]}"  # listed, then removed by someone else
    lock = _lock(lock_dir, TOKENS[0], gone)
    lock_fd = os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert "removed" in cgroups._remove_if_dead(gone, TOKENS[0], [lock_fd], 1)  # no error
    finally:
        os.close(lock_fd)
    assert not lock.exists()


def test_the_owner_locks_before_its_group_exists_and_unlocks_after_it_is_gone(
    tmp_path: Path, lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a child process: its parent group is listed in its flocked lock file, a sweep of the
    container (by this process) leaves it, and a normal exit removes both."""
    container = tmp_path / "container"
    container.mkdir()
    fake = cgroups.CgroupRoot(1, {"memory": container})
    monkeypatch.setattr(cgroups, "_own_paths", lambda: {"memory": "/"})
    read, write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the owner
        code = 1
        try:
            os.close(read)
            os.close(go_write)
            group = cgroups._process_dirs(fake)["memory"]
            os.write(write, (str(group) + "\n").encode())
            os.read(go_read, 1)
            cgroups._release_owner()  # what its exit does
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    os.close(go_read)
    try:
        group = Path(os.read(read, 4096).decode().strip())
        token = group.name.rsplit("-", 1)[1]
        lock = lock_dir / f"{token}.lock"
        assert group.parent == container and group.name == f"codeloop-{pid}-{token}"
        lines = lock.read_text().splitlines()
        assert lines[0] == cgroups.LOCK_MAGIC and lines[1] == f"pid {pid}" and f"group {group}" in lines
        cgroups._remove_stale(container)
        assert group.is_dir() and lock.is_file()  # alive: it holds the lock
        os.write(go_write, b"x")
    finally:
        os.close(go_write)
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not group.exists() and not lock.exists()


def test_no_lock_file_is_left_when_no_group_can_be_made(
    tmp_path: Path, lock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only cgroups (a default container): the group cannot be made, so its lock goes at once
    rather than at exit (or, for a killed process, at some later probe)."""
    monkeypatch.setattr(cgroups, "_owner", None)  # a fresh owner for this test; restored after it
    monkeypatch.setattr(cgroups, "_own_paths", lambda: {"memory": "/"})
    unwritable = cgroups.CgroupRoot(1, {"memory": tmp_path / "no-such-mount"})
    with pytest.raises(OSError):
        cgroups._process_dirs(unwritable)
    assert lock_dir.is_dir() and list(lock_dir.iterdir()) == []
    owner = cgroups._owner
    assert owner is not None and owner.lock_fd is None and owner.created == []


# --- real cgroups -------------------------------------------------------------------------------


def _real_root() -> cgroups.CgroupRoot:
    if os.geteuid() != 0:
        pytest.skip("making cgroups needs root here")
    root, why = cgroups.find_root()
    if root is None:
        pytest.skip(f"no cgroups here: {why}")
    return root


#: A host process in the fence: its own parent group and a session group with a process in it (a
#: worker that outlives a SIGKILLed host, as one without bubblewrap's parent-death signal does).
#: Prints its pid, token, the groups and the worker's pid; a line on stdin closes it normally.
_HOST = """
import json, os, subprocess, sys
from codeloop.sandbox.jail import cgroups
root, why = cgroups.find_root()
assert root is not None, why
group = cgroups.SessionCgroup.create(root, 256 << 20, 64)
fds, join = group.joiner()
worker = subprocess.Popen(["sleep", "300"], preexec_fn=join, stdin=subprocess.DEVNULL)
for fd in fds:
    os.close(fd)
owner = cgroups._owner
print(json.dumps({"pid": os.getpid(), "token": owner.token, "lock": owner.lock_fd is not None,
                  "parents": [str(p) for p in owner.created], "worker": worker.pid}), flush=True)
sys.stdin.readline()
group.remove()
worker.wait()
print("closed", flush=True)
"""

#: pid 1 of a new pid namespace: makes the host's pid there one our /proc does not show, then runs
#: it (stdin and stdout passed through) and waits for it
_PIDNS_INIT = """
import subprocess, sys
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(sys.argv[1])
sys.exit(subprocess.call([sys.executable, "-c", sys.argv[2]]))
"""


class Host:
    def __init__(self, fence: cgroups.SessionCgroup, *, pid_namespace: bool = False) -> None:
        fds, join = fence.joiner()
        argv = [sys.executable, "-c", _HOST]
        if pid_namespace:
            last = 3_000_000 + int.from_bytes(os.urandom(2), "big")
            while Path(f"/proc/{last + 1}").exists():
                last += 7
            argv = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", _PIDNS_INIT, str(last), _HOST]
        env = {**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=join,
                start_new_session=True,
            )
        finally:
            for fd in fds:
                os.close(fd)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            pytest.fail(f"the host did not start (exit {self.proc.wait()})")
        said = json.loads(line)
        self.pid, self.token, self.worker = said["pid"], said["token"], said["worker"]
        self.parents = [Path(p) for p in said["parents"]]
        self.worker_is_ours_to_see = not pid_namespace  # else its pid names another process here
        assert said["lock"], "the host found no private lock directory"

    def kill(self) -> None:
        """SIGKILL the host alone (not its worker), as an OOM killer or a cancelled job would."""
        os.kill(self.pid, signal.SIGKILL)
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
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the host (and unshare's init)
            self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def _sessions(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.is_dir()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.fixture
def fence() -> Iterator[tuple[cgroups.CgroupRoot, cgroups.SessionCgroup]]:
    """A cgroup of this test's own (a session group of this process) that holds the hosts, so every
    group the sweep looks at here was made by a host this test started."""
    root = _real_root()
    group = cgroups.SessionCgroup.create(root, 2 << 30, 256)
    yield root, group
    for top in group.dirs.values():  # after a failure, groups of our hosts may be left in it
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
            for _ in range(100):
                for pid in _procs(Path(dirpath)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)  # only processes this test started are in it
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
    for d in group.dirs.values():
        assert not d.exists(), d


def _procs(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split() if int(pid) > 0]
    except OSError:
        return []


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    started: list[Host] = []
    yield started
    for host in started:
        host.stop()
        if host.worker_is_ours_to_see:  # (the fence's removal kills whatever else is left)
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.worker, signal.SIGKILL)
    for host in started:  # after a failure: the lock files of our hosts, once nobody holds them
        for lock_dir in cgroups._lock_dirs():
            with contextlib.suppress(OSError):
                fd = os.open(lock_dir / f"{host.token}.lock", os.O_RDWR | os.O_NOFOLLOW)
                try:
                    for _ in range(200):  # a killed process lets go of it once it is all gone
                        try:
                            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                            break
                        except BlockingIOError:
                            time.sleep(0.01)
                    else:
                        continue
                    os.unlink(lock_dir / f"{host.token}.lock")
                finally:
                    os.close(fd)


def test_a_killed_host_s_group_is_removed_and_live_ones_kept_in_any_pid_namespace(
    fence: tuple[cgroups.CgroupRoot, cgroups.SessionCgroup], hosts: list[Host]
) -> None:
    """Three hosts share the fence as their parent cgroup: one live, one live in a pid namespace of
    its own (its pid is one our /proc does not show: the old pid check took it for dead and
    SIGKILLed its worker), one SIGKILLed with its worker still running in its session group. The
    sweep removes the killed host's groups, kills its worker and drops its lock file; the live ones
    and their workers are untouched and close normally."""
    root, group = fence
    live = Host(group)
    hosts.append(live)
    foreign = Host(group, pid_namespace=True)
    hosts.append(foreign)
    dead = Host(group)
    hosts.append(dead)
    lock_dir = next(d for d in cgroups._lock_dirs() if d.is_dir())
    assert not Path(f"/proc/{foreign.pid}").exists()  # to a pid check, the foreign host is dead
    assert all(p.parent in group.dirs.values() for h in (live, foreign, dead) for p in h.parents)
    dead.kill()  # no cleanup at all; its worker lives on in its session group
    assert _alive(dead.worker) and all(p.is_dir() for p in dead.parents)
    assert [str(dead.worker)] == (_sessions(dead.parents[0])[0] / "cgroup.procs").read_text().split()
    assert (lock_dir / f"{dead.token}.lock").is_file()

    for container in group.dirs.values():
        cgroups._remove_stale(container, root.version)

    for host in (live, foreign):  # the live ones first: nothing of theirs was touched
        assert all(p.is_dir() for p in host.parents)
        assert (lock_dir / f"{host.token}.lock").is_file()
    assert _alive(live.worker)
    assert foreign.proc.poll() is None
    assert _procs(_sessions(foreign.parents[0])[0]) != []  # its worker is still there
    assert not any(p.exists() for p in dead.parents)
    deadline = time.monotonic() + 5
    while _alive(dead.worker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(dead.worker)
    assert not (lock_dir / f"{dead.token}.lock").exists()

    assert live.close() == "closed" and foreign.close() == "closed"
    assert not any(p.exists() for h in (live, foreign) for p in h.parents)  # a normal exit leaves none
    assert not (lock_dir / f"{live.token}.lock").exists()
    assert not (lock_dir / f"{foreign.token}.lock").exists()


_INVISIBLE_KILL = """
import json, sys
from pathlib import Path
from codeloop.sandbox.jail import cgroups
group = cgroups.SessionCgroup(cgroups.CgroupRoot(1, {}), {"stale": Path(sys.argv[1])})
seen = group.pids()
print(json.dumps([seen, group.kill_all(timeout=0.3), "survived"]), flush=True)
"""


def test_a_task_our_pid_namespace_cannot_see_is_never_kill_0(tmp_path: Path) -> None:
    """cgroup v2 lists a task the reader's pid namespace cannot see as pid 0, and kill(0, SIGKILL)
    is the caller's own process group: the old stale sweep, run from another pid namespace, killed
    itself that way. kill_all now skips it (and says the group is not empty)."""
    if os.geteuid() != 0:
        pytest.skip("making cgroups and pid namespaces needs root here")
    _mounts_v1, v2 = cgroups._mounts()
    if v2 is None:
        pytest.skip("no cgroup v2 hierarchy here")
    rel = cgroups._own_paths().get("", "/").lstrip("/")
    group = v2 / rel / f"codeloop-test-{os.urandom(4).hex()}"
    try:
        group.mkdir()
    except OSError as e:
        pytest.skip(f"cannot make a cgroup v2 group here: {e}")
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        try:
            (group / "cgroup.procs").write_text(str(sleeper.pid))
        except OSError as e:
            pytest.skip(f"cannot move a process into a cgroup v2 group here: {e}")
        env = {**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        child = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", _INVISIBLE_KILL, str(group)],
            capture_output=True, text=True, env=env, timeout=30, start_new_session=True,
        )
        assert child.returncode == 0, (child.returncode, child.stdout, child.stderr)
        seen, emptied, said = json.loads(child.stdout)
        assert said == "survived"
        if seen:  # a kernel that lists the unseen task as 0 (6.x does): it stays, and counts as left
            assert seen == [0] and emptied is False
        assert sleeper.poll() is None  # and the task it could not see was not touched
    finally:
        sleeper.kill()
        sleeper.wait()
        for _ in range(100):
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
    assert not group.exists()
