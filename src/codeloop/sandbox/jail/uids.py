"""Per-session unprivileged uids for workers started by root.

Each live session holds an exclusive ``flock`` on ``<lock dir>/<uid>.lock``, so two sessions
(in this process or any other) never share a uid: they cannot signal or trace each other, and
RLIMIT_NPROC counts each session's processes alone. Releasing a uid first kills every process
still running as it (daemons and orphans included), so the next holder starts clean.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import stat
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from codeloop.errors import SandboxError
from codeloop.sandbox.hostfs import open_private_dir

__all__ = [
    "RESERVED_RANGES",
    "UID_BASE",
    "UID_COUNT",
    "UidLease",
    "can_switch_uid",
    "check_private_dir",
    "kill_uid",
]

# Far above login users and subordinate-id ranges (100000-165535 typical), and outside every range
# systemd assigns (docs/UIDS-GIDS.md): its dynamic users (61184-65519), the container range that
# systemd-nspawn --private-users=pick draws from (524288-1879048191) and the foreign range
# (2147352576-2147418111); below 2**31 (uids above are "signedness trouble" for many tools).
UID_BASE = 1_900_000_000
UID_COUNT = 100_000_000
#: the id ranges a session uid must never fall in (systemd's dynamic, container and foreign ranges)
RESERVED_RANGES: tuple[tuple[int, int], ...] = ((61184, 65519), (524288, 1879048191), (2147352576, 2147418111))
_CLEAN = b"clean\n"
_LOCK_DIRS = (Path("/run/codeloop/uids"), Path("/tmp/codeloop-root-uids"))


def _lock_dir(candidates: Sequence[Path] = _LOCK_DIRS) -> tuple[Path, int]:
    """The lock directory and a descriptor of it: every lock file is opened relative to that
    descriptor, so a planted symlink (at the directory or a lock file) is never followed."""
    for candidate in candidates:
        try:
            fd = open_private_dir(candidate)
        except OSError:
            continue
        if fd is not None:
            return candidate, fd
    raise SandboxError("no private directory for session uid locks (/run/codeloop or /tmp)")


def kill_uid(uid: int) -> None:
    """SIGKILL every process running as ``uid`` (``kill -KILL -1`` run as that uid).

    As that uid, "-1" reaches exactly its own processes; a sweeper never needs /proc scans.
    """
    kill = shutil.which("kill", path="/usr/bin:/bin") or "/bin/kill"
    for _ in range(2):  # kill(-1) walks the process list once: a second pass catches racing forks
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [kill, "-9", "-1"],
                user=uid,
                group=uid,
                extra_groups=[],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=5,
                check=False,
                env={"PATH": "/usr/bin:/bin"},
            )


class UidLease:
    """An exclusively held session uid (gid equal to it); release() once the session is over."""

    def __init__(self, uid: int, lock_fd: int, path: Path, dir_fd: int | None = None) -> None:
        self.uid = uid
        self.gid = uid
        self._fd: int | None = lock_fd
        self._path = path
        self._dir_fd = dir_fd
        self._refs = 1  # holders: each worker jail using the uid, and the session that owns it
        self._lock = threading.Lock()

    @classmethod
    def acquire(cls, lock_dirs: Sequence[Path] = _LOCK_DIRS) -> UidLease:
        lock_dir, dir_fd = _lock_dir(lock_dirs)
        try:
            start = random.randrange(UID_COUNT)
            for i in range(256):
                uid = UID_BASE + (start + i) % UID_COUNT
                name = f"{uid}.lock"
                try:
                    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
                except OSError as e:
                    raise SandboxError(f"cannot create a uid lock in {lock_dir}: {e}") from e
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    # A clean release unlinks its file: make sure we locked the file still at the path.
                    current = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    locked = os.fstat(fd)
                    if (current.st_dev, current.st_ino) != (locked.st_dev, locked.st_ino):
                        raise BlockingIOError
                except (BlockingIOError, FileNotFoundError):
                    os.close(fd)
                    continue
                if os.pread(fd, len(_CLEAN), 0) not in (b"", _CLEAN):
                    kill_uid(uid)  # the last holder died without sweeping
                os.ftruncate(fd, 0)
                os.pwrite(fd, b"in use\n", 0)
                lease = cls(uid, fd, lock_dir / name, dir_fd)
                dir_fd = -1  # the lease owns it now
                return lease
            raise SandboxError("no free session uid after 256 tries")
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)

    def retain(self) -> UidLease:
        """One more holder (a restarted worker of the same session): release() once each."""
        with self._lock:
            if self._fd is None:
                raise SandboxError(f"session uid {self.uid} was already released")
            self._refs += 1
        return self

    def release(self, sweep: bool = True) -> None:
        """Kill what still runs as this uid; the last holder also marks it clean and unlocks it.

        ``sweep=False`` when the caller already knows nothing is left (an emptied cgroup).
        Calls past the last holder do nothing.
        """
        with self._lock:
            if self._fd is None:
                return
            self._refs -= 1
            last = self._refs <= 0
            if last:
                fd, self._fd = self._fd, None
        if sweep:
            kill_uid(self.uid)
        if not last:
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _CLEAN, 0)
            # Clean and still locked: remove the file, so lock files do not pile up.
            with contextlib.suppress(OSError):
                if self._dir_fd is not None:
                    os.unlink(self._path.name, dir_fd=self._dir_fd)
                else:
                    os.unlink(self._path)
        finally:
            os.close(fd)
            if self._dir_fd is not None:
                os.close(self._dir_fd)
                self._dir_fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


# CAP_SETGID=6, CAP_SETUID=7, CAP_SETPCAP=8: what the worker needs to drop to the session uid.
_UID_SWITCH_CAPS = (1 << 6) | (1 << 7) | (1 << 8)
_SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc", "/root",
     "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/work"}
)  # fmt: skip


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def can_switch_uid() -> tuple[bool, str]:
    """Whether this process may start workers as session uids; if not, why."""
    if os.geteuid() != 0:
        return False, "not running as root: the worker keeps the caller's uid"
    if (_effective_caps() & _UID_SWITCH_CAPS) != _UID_SWITCH_CAPS:
        return False, "root without CAP_SETUID/CAP_SETGID/CAP_SETPCAP: cannot switch to a session uid"
    return True, ""


def check_private_dir(path: str) -> None:
    """Refuse to hand anything but a private session directory to a session uid.

    A session directory is a real directory (not a link), at least two levels below ``/``,
    owned by us (or by an earlier session uid) and not writable by others.
    """
    real = os.path.realpath(path)
    try:
        st = os.lstat(path)
    except OSError as e:
        raise SandboxError(f"session directory {path} is unusable: {e}") from e
    owner_ok = st.st_uid == os.geteuid() or UID_BASE <= st.st_uid < UID_BASE + UID_COUNT
    if (
        real != os.path.abspath(path)
        or real.count("/") < 2
        or real in _SYSTEM_DIRS
        or not stat.S_ISDIR(st.st_mode)
        or not owner_ok
        or st.st_mode & 0o022
    ):
        raise SandboxError(
            f"refusing to give {path} to a session uid: not a private session directory "
            "(a real directory two or more levels deep, owned by us, not writable by others)"
        )
