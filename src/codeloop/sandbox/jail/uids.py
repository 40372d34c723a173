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
import subprocess
from pathlib import Path

from codeloop.errors import SandboxError

__all__ = ["UID_BASE", "UID_COUNT", "UidLease", "kill_uid"]

# Far above login users, subordinate-id ranges (100000-165535 typical) and systemd's dynamic users.
UID_BASE = 1_700_000_000
UID_COUNT = 1_000_000
_CLEAN = b"clean\n"


def _lock_dir() -> Path:
    for candidate in (Path("/run/codeloop/uids"), Path("/tmp/codeloop-root-uids")):
        try:
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = candidate.stat()
            if st.st_uid == os.geteuid() and not st.st_mode & 0o022:
                return candidate
        except OSError:
            continue
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

    def __init__(self, uid: int, lock_fd: int, path: Path) -> None:
        self.uid = uid
        self.gid = uid
        self._fd: int | None = lock_fd
        self._path = path

    @classmethod
    def acquire(cls) -> UidLease:
        lock_dir = _lock_dir()
        start = random.randrange(UID_COUNT)
        for i in range(256):
            uid = UID_BASE + (start + i) % UID_COUNT
            try:
                fd = os.open(
                    lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
                )
            except OSError as e:
                raise SandboxError(f"cannot create a uid lock in {lock_dir}: {e}") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # A clean release unlinks its file: make sure we locked the file still at the path.
                current = os.stat(lock_dir / f"{uid}.lock", follow_symlinks=False)
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
            return cls(uid, fd, lock_dir / f"{uid}.lock")
        raise SandboxError("no free session uid after 256 tries")

    def release(self, sweep: bool = True) -> None:
        """Kill what still runs as this uid, mark it clean and unlock it (idempotent).

        ``sweep=False`` when the caller already knows nothing is left (an emptied cgroup).
        """
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if sweep:
                kill_uid(self.uid)
            os.ftruncate(fd, 0)
            os.pwrite(fd, _CLEAN, 0)
            # Clean and still locked: remove the file, so lock files do not pile up.
            with contextlib.suppress(OSError):
                os.unlink(self._path)
        finally:
            os.close(fd)
