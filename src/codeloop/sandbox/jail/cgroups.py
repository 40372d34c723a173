"""Per-session memory and pids cgroups (v1 or v2), nested under the caller's own cgroup.

Nesting keeps every limit an outer fence sets (a CI job, the test suite) in force for the
sessions too. The worker joins its group before bubblewrap runs (``preexec``: a write of "0" to
pre-opened ``cgroup.procs`` files), so no process of the session is ever outside it.

Each process puts its sessions' groups in a parent group of its own, ``codeloop-<pid>-<token>``
in its own cgroup (``token``: 16 random hex digits). Before it makes that group it creates
``<token>.lock`` in a private lock directory of ours (``/run/codeloop/cgroups``, else
``/tmp/codeloop-cgroups-<euid>``), takes an exclusive ``flock`` on it and writes the group's paths
into it; it keeps that descriptor until it exits. A killed process cannot remove its groups;
``_remove_stale`` (run when a process first looks for cgroups) removes them, and kills what is
left in them, only on proof that the owner is gone: the lock file for that token is a small
regular file of ours with one link in our lock directory, nobody holds its ``flock`` (the kernel
drops it with the owner's last descriptor, however it died), and it says it is codeloop's and
names this very group. No pid is trusted: a codeloop process in another pid namespace sharing the
parent cgroup has a pid that our /proc does not show, yet it holds its lock (or, with a lock
directory we cannot see, we find no lock file and leave its group alone). Groups without that
proof, including ``codeloop-<pid>`` ones of codeloop versions before the lock, are never touched.
A lock file goes once every group it lists is gone (``_drop_orphan_locks`` also drops a free one
whose groups something else removed). And no kill targets pid 0: cgroup v2 lists a task the
reader's pid namespace cannot see as 0, and ``kill(0)`` is the caller's own process group.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import itertools
import logging
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codeloop.errors import SandboxError
from codeloop.sandbox.hostfs import open_private_dir

__all__ = ["LOCK_MAGIC", "CgroupRoot", "SessionCgroup", "find_root"]

log = logging.getLogger(__name__)

_CONTROLLERS = ("memory", "pids")
_counter = itertools.count(1)
_lock = threading.Lock()

#: the first line of a parent group's lock file (then ``pid N``, ``created T``, ``group PATH`` lines)
LOCK_MAGIC = "codeloop cgroup owner v1"
#: a process's parent group: ``codeloop-<pid>-<token>``
_GROUP_NAME = re.compile(r"codeloop-(\d+)-([0-9a-f]{16})\Z")
_MAX_LOCK_SIZE = 8192


@dataclass(frozen=True)
class CgroupRoot:
    """Where the cgroup controllers we need are mounted: v1 one dir per controller, v2 one."""

    version: int
    mounts: dict[str, Path]  # controller ("memory", "pids", or "unified" for v2) -> mount point


def _mounts() -> tuple[dict[str, Path], Path | None]:
    v1: dict[str, Path] = {}
    v2: Path | None = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return v1, v2
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, options = rfields[0], rfields[2].split(",") + fields[5].split(",")
        if fstype == "cgroup":
            for controller in _CONTROLLERS:
                if controller in options:
                    v1[controller] = Path(fields[4])
        elif fstype == "cgroup2" and v2 is None:
            v2 = Path(fields[4])
    return v1, v2


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per controller ("" key for the v2 unified hierarchy)."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _hid, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def find_root() -> tuple[CgroupRoot | None, str]:
    """The usable cgroup root, or None and the reason."""
    v1, v2 = _mounts()
    if all(c in v1 for c in _CONTROLLERS):
        root = CgroupRoot(1, {c: v1[c] for c in _CONTROLLERS})
    elif v2 is not None:
        controllers = (
            (v2 / "cgroup.controllers").read_text().split() if (v2 / "cgroup.controllers").exists() else []
        )
        if not all(c in controllers for c in _CONTROLLERS):
            return None, "the cgroup v2 hierarchy lacks the memory or pids controller"
        root = CgroupRoot(2, {"unified": v2})
    else:
        return None, "no memory and pids cgroup controllers are mounted"
    try:
        dirs = _process_dirs(root)
    except OSError as e:
        return None, f"cannot create cgroups under this process's own ({e.strerror or e})"
    for parent in dirs.values():
        _remove_stale(parent.parent, root.version)
    _drop_orphan_locks()
    return root, ""


# --- the owner's lock -----------------------------------------------------------------------------


def _lock_dirs() -> tuple[Path, ...]:
    """Where parent groups' lock files live, first choice first (private to our euid)."""
    return (Path("/run/codeloop/cgroups"), Path(f"/tmp/codeloop-cgroups-{os.geteuid()}"))


def _open_lock_dirs(first_only: bool) -> list[int]:
    """Descriptors of the usable lock directories (real, ours, writable by nobody else)."""
    fds = []
    for candidate in _lock_dirs():
        try:
            fd = open_private_dir(candidate)
        except OSError:
            continue
        if fd is not None:
            fds.append(fd)
            if first_only:
                break
    return fds


class _Owner:
    """This process's parent groups and the lock file whose flock it holds while they exist."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.token = secrets.token_hex(8)
        self.created: list[Path] = []
        self.tried = False  # whether lock() tried to make the lock file
        self.lock_fd: int | None = None
        self.dir_fd: int | None = None
        self.listed: list[str] = []

    def lock(self, paths: list[Path]) -> None:
        """Create and flock ``<token>.lock`` (on the first call), then write the group paths into
        it: before the groups exist, so a group of ours is never seen without its proof of life."""
        if not self.tried:
            self.tried = True
            self._make_lock()
        if self.lock_fd is None:
            return
        new = [str(p) for p in paths if str(p) not in self.listed]
        if new:
            self.listed += new
            text = f"{LOCK_MAGIC}\npid {self.pid}\ncreated {time.time():.6f}\n"
            text += "".join(f"group {p}\n" for p in self.listed)
            os.ftruncate(self.lock_fd, 0)
            os.pwrite(self.lock_fd, text.encode(), 0)

    def _make_lock(self) -> None:
        dir_fds = _open_lock_dirs(first_only=True)
        if not dir_fds:
            log.debug("codeloop: no private cgroup lock directory: this process's groups are never swept")
            return
        dir_fd, name, fd = dir_fds[0], f"{self.token}.lock", -1
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        except OSError as e:  # e.g. no flock on this filesystem: no lock file, never swept
            log.debug("codeloop: no cgroup lock (%s): this process's groups are never swept", e)
            if fd >= 0:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)
            os.close(dir_fd)
            return
        self.lock_fd, self.dir_fd = fd, dir_fd

    def unlock(self) -> None:
        """Drop the lock file and the lock (no group of ours exists); a later lock() makes a new one."""
        if self.lock_fd is not None and self.dir_fd is not None:
            _unlink_if_same(self.dir_fd, f"{self.token}.lock", self.lock_fd)
        for fd in (self.lock_fd, self.dir_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.lock_fd = self.dir_fd = None
        self.tried, self.listed = False, []

    def release(self) -> None:
        """At exit: remove the groups made here (empty by now), and the lock file once none is left."""
        for d in reversed(self.created):  # a later one may sit inside an earlier one (a fence)
            with contextlib.suppress(OSError):
                d.rmdir()
        if self.lock_fd is not None and self.dir_fd is not None:
            if not any(os.path.lexists(p) for p in self.listed):
                _unlink_if_same(self.dir_fd, f"{self.token}.lock", self.lock_fd)
            os.close(self.lock_fd)  # the lock goes with it; a group left over is a later sweep's
            self.lock_fd = None


def _unlink_if_same(dir_fd: int, name: str, fd: int) -> None:
    """Unlink ``name`` in ``dir_fd`` if it is still the file open as ``fd``."""
    with contextlib.suppress(OSError):
        st, fst = os.stat(name, dir_fd=dir_fd, follow_symlinks=False), os.fstat(fd)
        if (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino):
            os.unlink(name, dir_fd=dir_fd)


_owner: _Owner | None = None


def _forget_owner_after_fork() -> None:
    """In a forked child: close the copies of the parent's descriptors (never unlocking: the flock
    belongs to the open file, which the parent still has); the child makes groups of its own."""
    global _owner, _lock
    owner, _owner = _owner, None
    _lock = threading.Lock()
    if owner is not None:
        for fd in (owner.lock_fd, owner.dir_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


os.register_at_fork(after_in_child=_forget_owner_after_fork)


@atexit.register
def _release_owner() -> None:
    # Registered when this module is imported, before the jail's finalizer that closes the sessions
    # (jailer.py imports this module first), so it runs after it: the groups are empty by then.
    owner = _owner
    if owner is not None and owner.pid == os.getpid():
        owner.release()


def _process_dirs(root: CgroupRoot) -> dict[str, Path]:
    """This process's private parent group per hierarchy, created (with its lock) on first use."""
    global _owner
    own = _own_paths()
    with _lock:  # one thread makes the lock file and the groups; the others find them
        if _owner is None or _owner.pid != os.getpid():
            _owner = _Owner()
        owner = _owner
        name = f"codeloop-{owner.pid}-{owner.token}"
        wanted = {
            key: mount / own.get(key if root.version == 1 else "", "/").lstrip("/") / name
            for key, mount in root.mounts.items()
        }
        missing = [parent for parent in wanted.values() if not parent.is_dir()]
        if missing:
            owner.lock(list(wanted.values()))
        try:
            for parent in missing:
                parent.mkdir(exist_ok=True)
                owner.created.append(parent)
                if root.version == 2:
                    _enable_v2_controllers(parent.parent, parent)
        except OSError:
            if not owner.created:  # e.g. read-only cgroups: no group, so no lock file either
                owner.unlock()
            raise
    return wanted


# --- the sweep of groups whose owner is provably gone ---------------------------------------------


def _remove_stale(container: Path, version: int = 1) -> None:
    """Remove the parent groups in ``container`` whose owner is provably gone (see the module doc),
    killing what is left in their session groups. Best effort and quiet: other codeloop processes
    may clean up the same groups at the same moment; nothing here may stop this process starting."""
    try:
        names = [entry.name for entry in os.scandir(container) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return
    mine = _owner.token if _owner is not None and _owner.pid == os.getpid() else None
    candidates = [(name, m[2]) for name in names if (m := _GROUP_NAME.match(name)) and m[2] != mine]
    if not candidates:
        return
    dir_fds = _open_lock_dirs(first_only=False)
    try:
        for name, token in candidates:
            try:
                why = _remove_if_dead(container / name, token, dir_fds, version)
            except OSError as e:
                why = f"left: {e}"
            log.debug("codeloop: stale cgroup %s: %s", container / name, why)
    finally:
        for fd in dir_fds:
            os.close(fd)


def _drop_orphan_locks() -> None:
    """Unlink the lock files of dead owners whose groups are all gone (removed by someone else: a
    CI job's cgroup deleted with everything in it), once the lock is free; quiet, best effort."""
    for dir_fd in _open_lock_dirs(first_only=False):
        try:
            with os.scandir(dir_fd) as entries:
                names = [e.name for e in entries if re.fullmatch(r"[0-9a-f]{16}\.lock", e.name)]
            for name in names:
                with contextlib.suppress(OSError):
                    _drop_if_orphan(dir_fd, name)
        finally:
            os.close(dir_fd)


def _drop_if_orphan(dir_fd: int, name: str) -> None:
    fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or fst.st_uid != os.geteuid() or fst.st_nlink != 1:
            return
        if fst.st_size > _MAX_LOCK_SIZE:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # its owner lives
        listed = _listed_groups(os.pread(fd, _MAX_LOCK_SIZE + 1, 0))
        if listed and not any(os.path.lexists(p) for p in listed):  # (empty: being made right now)
            _unlink_if_same(dir_fd, name, fd)
    finally:
        os.close(fd)


def _listed_groups(content: bytes) -> list[str]:
    """The group paths a lock file lists; [] unless it is a complete codeloop lock file."""
    lines = content.decode("utf-8", "replace").splitlines()
    if len(lines) < 4 or lines[0] != LOCK_MAGIC:
        return []
    return [line.removeprefix("group ") for line in lines[3:] if line.startswith("group ")]


def _remove_if_dead(group: Path, token: str, dir_fds: list[int], version: int) -> str:
    """Remove ``group`` if its owner's lock proves it gone; says what it did and why."""
    name = f"{token}.lock"
    for dir_fd in dir_fds:
        try:
            lst = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(lst.st_mode):
            return "left: its lock file is not a regular file"
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (lst.st_dev, lst.st_ino):
                return "left: its lock file was replaced while being checked"
            if fst.st_uid != os.geteuid() or fst.st_nlink != 1 or fst.st_size > _MAX_LOCK_SIZE:
                return "left: its lock file is not a small file of ours with one link"
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "left: in use, its owner holds the lock"
            if os.fstat(fd).st_nlink != 1:
                return "left: removed meanwhile"
            listed = _listed_groups(os.pread(fd, _MAX_LOCK_SIZE + 1, 0))
            if str(group) not in listed:
                return "left: its lock file does not name this group"
            _remove_group(group, version)  # under the lock: one sweeper at a time
            if not any(os.path.lexists(p) for p in listed):
                _unlink_if_same(dir_fd, name, fd)
            return "removed: its owner is gone (nobody holds its lock)"
        finally:
            os.close(fd)
    return "left: no lock file of ours for it (an older codeloop, or an owner whose lock directory we cannot see)"


def _remove_group(group: Path, version: int) -> None:
    """Kill what is left in a dead owner's session groups, remove them, then the group itself."""
    try:
        children = [group / entry.name for entry in os.scandir(group) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:  # removed meanwhile by another process's cleanup
        return
    root = CgroupRoot(version, {})
    for child in children:
        SessionCgroup(root, {"unified" if version == 2 else "stale": child}).remove()
    with contextlib.suppress(OSError):
        group.rmdir()


def _enable_v2_controllers(*groups: Path) -> None:
    for group in groups:
        (group / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in _CONTROLLERS))


def _running(pid: int) -> bool:
    """Not yet a zombie (or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _open_high(path: Path) -> int:
    """Open for writing at fd >= 10: the spawner dup2s the protocol pipes onto 3 and 4."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    finally:
        os.close(fd)


class SessionCgroup:
    """One session's cgroup in every hierarchy we use; remove() when the session ends."""

    def __init__(self, root: CgroupRoot, dirs: dict[str, Path]) -> None:
        self.root = root
        self.dirs = dirs

    @classmethod
    def create(cls, root: CgroupRoot, memory_bytes: int | None, pids_max: int | None) -> SessionCgroup:
        """Make the groups and set the limits; raises SandboxError when the host refuses."""
        with _lock:
            name = f"s{next(_counter)}-{os.urandom(3).hex()}"
        try:
            dirs = {key: parent / name for key, parent in _process_dirs(root).items()}
            for d in dirs.values():
                d.mkdir()
            group = cls(root, dirs)
            group._set_limits(memory_bytes, pids_max)
        except OSError as e:
            raise SandboxError(f"cannot set up the session cgroup: {e}") from e
        return group

    def _file(self, controller: str, name: str) -> Path:
        key = controller if self.root.version == 1 else "unified"
        return self.dirs[key] / name

    def _set_limits(self, memory_bytes: int | None, pids_max: int | None) -> None:
        if memory_bytes is not None:
            if self.root.version == 1:
                self._file("memory", "memory.limit_in_bytes").write_text(str(memory_bytes))
                swap = self._file("memory", "memory.memsw.limit_in_bytes")
                if swap.exists():
                    swap.write_text(str(memory_bytes))
            else:
                self._file("memory", "memory.max").write_text(str(memory_bytes))
                swap = self._file("memory", "memory.swap.max")
                if swap.exists():
                    swap.write_text("0")
        if pids_max is not None:
            self._file("pids", "pids.max").write_text(str(pids_max))

    def joiner(self) -> tuple[list[int], Callable[[], None]]:
        """Open ``cgroup.procs`` files now; the returned callable moves the calling process in.

        The callable runs between fork and exec (``preexec_fn``): it only writes to open fds.
        The caller closes the fds once the child has started.
        """
        fds = [_open_high(d / "cgroup.procs") for d in self.dirs.values()]

        def join() -> None:
            for fd in fds:
                os.write(fd, b"0")

        return fds, join

    def pids(self) -> list[int]:
        """The processes in the group (from the first hierarchy; all hold the same set)."""
        first = next(iter(self.dirs.values()))
        try:
            return [int(p) for p in (first / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this group for memory."""
        name = "memory.oom_control" if self.root.version == 1 else "memory.events"
        try:
            for line in self._file("memory", name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process in the group; True once all are dead (a pid namespace can take a while)."""
        if self.root.version == 2 and (self.dirs["unified"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.dirs["unified"] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        signalled: set[int] = set()
        while True:
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                # cgroup v2 lists a task our pid namespace cannot see as 0: never kill(0), which
                # is this process's own process group (and no negative pid: a whole group)
                if pid > 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            signalled.update(pid for pid in pids if pid > 0)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        # A task leaves cgroup.procs early in its exit: wait until each one is really dead.
        while any(_running(pid) for pid in signalled):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def remove(self) -> bool:
        """Kill what is left and delete the groups; True when the group was emptied.

        A group that stays busy stays; its parent group goes once its owner is gone
        (``_remove_stale``).
        """
        emptied = self.kill_all()
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)
        return emptied
