"""Remove the session holders of codeloop processes that died (SIGKILL, OOM, a cancelled CI job).

A normal close removes ``<root>/codeloop-XXXX/session`` with its holder; a killed process cannot,
and without this its holders pile up in /tmp (owned in part by session uids, so a user may not even
be able to delete them). A holder is removed only when every one of these holds, each checked by
descriptor, never following a link (SECURITY.md, "Host-side housekeeping"):

* its name is exactly ``codeloop-`` and the 8 characters ``tempfile.mkdtemp`` draws;
* it is a real directory (``lstat``), owned by our effective uid, mode 0711 as we make it, and
  the descriptor we opened (``O_NOFOLLOW``) is that same directory;
* it holds nothing but ``session`` and ``tmp-XXXXXXXX`` directories and the lock file (a holder
  of a session, or of a jail's private /tmp alone: ``hostfs.new_private_tmp``);
* the lock file ``holder.lock`` is a regular file of ours with one link, small, and we get its
  ``flock(LOCK_EX | LOCK_NB)``: its owner, which holds that lock for the session's whole life, is
  gone (a ``flock`` dies with the last descriptor of its open file, whatever killed the process);
* under that lock it still has its link and says ``codeloop session holder v1`` with the pid, the
  creation time and the device and inode of this very holder (the owner writes it only once it
  holds the lock, so a holder being made right now reads as "not ours yet" and is left).

The removal is ``hostfs.remove_holder_at`` (the remover a normal close uses), while the lock is
held, so two sweepers never remove the same holder. A holder without a lock file (made by a codeloop
before the lock existed, or cut short between ``mkdtemp`` and the lock) is never removed
automatically: only ``sweep(legacy=True)`` (``codeloop cleanup --legacy``) removes one, when it
passes every check above but the lock, nothing in it changed for ``older_than`` seconds (at least
``MIN_LEGACY_AGE``), and no process we can see works in it (its working directory, an open
file or its ``TMPDIR`` there).

A jail's private /tmp made by a codeloop before it had a holder of its own (``codeloop-tmp-`` and
8 characters, straight in the system temp directory, never locked) is likewise only removed with
``legacy=True``: a real directory, mode 0700, owned by us or (when we are root) by a session uid,
unchanged for ``older_than`` seconds and used by no process we can see; its contents are the
worker's, so it is removed by descriptor (``hostfs.remove_tree_at``), never following a link.

``sweep_soon(root)`` is the automatic, cheap form: at most once per ``SWEEP_INTERVAL`` seconds per
root and process, on a daemon thread, within ``SWEEP_BUDGET`` seconds, never raising (it logs at
debug level on ``codeloop.sandbox.leftovers``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.errors import SandboxError
from codeloop.sandbox.hostfs import (
    HOLDER_LOCK,
    HOLDER_MAGIC,
    HOLDER_MODE,
    SESSION_NAME,
    TMP_PREFIX,
    remove_holder_at,
    remove_tree_at,
)
from codeloop.sandbox.jail.uids import UID_BASE, UID_COUNT

__all__ = [
    "MIN_LEGACY_AGE",
    "SWEEP_BUDGET",
    "SWEEP_INTERVAL",
    "SweepReport",
    "Verdict",
    "sweep",
    "sweep_soon",
]

log = logging.getLogger(__name__)

#: ``tempfile.mkdtemp``'s names: the prefix and 8 characters of its alphabet
_HOLDER_NAME = re.compile(r"codeloop-[a-z0-9_]{8}\Z")
_TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r"[a-z0-9_]{8}\Z")
#: a jail's private /tmp from before it had a holder of its own (``mkdtemp(prefix="codeloop-tmp-")``)
_LEGACY_TMP_NAME = re.compile(r"codeloop-tmp-[a-z0-9_]{8}\Z")
_LEGACY_TMP_MODE = 0o700
_OLD_TMP = "a private /tmp of an older codeloop"
_LOCK_TEXT = re.compile(
    re.escape(HOLDER_MAGIC) + r"\npid (\d+)\ncreated (\d+(?:\.\d+)?)\nholder (\d+):(\d+)\n\Z"
)
_MAX_LOCK_SIZE = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

#: a holder without a lock file younger than this is never removed, whatever the caller asks
MIN_LEGACY_AGE = 60.0
#: the automatic sweep of a root runs at most this often (seconds) in one process
SWEEP_INTERVAL = 600.0
#: and stops looking at further holders after this many seconds
SWEEP_BUDGET = 2.0

REMOVED, WOULD_REMOVE, SKIPPED, FAILED = "removed", "would remove", "skipped", "failed"


@dataclass(frozen=True)
class Verdict:
    """What the sweep did with one ``codeloop-XXXXXXXX`` entry of the root, and why."""

    path: str
    action: str  # REMOVED, WOULD_REMOVE, SKIPPED or FAILED
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "action": self.action, "reason": self.reason}


@dataclass
class SweepReport:
    """Every verdict of one sweep of ``root``; ``complete`` is False when the time budget ran out."""

    root: str
    dry_run: bool
    verdicts: list[Verdict] = field(default_factory=list)
    complete: bool = True

    def of(self, action: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.action == action]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "counts": {a: len(self.of(a)) for a in (REMOVED, WOULD_REMOVE, SKIPPED, FAILED)},
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def _root_path(root: str | os.PathLike[str] | None) -> str:
    return os.path.abspath(root if root is not None else tempfile.gettempdir())


def sweep(
    root: str | os.PathLike[str] | None = None,
    *,
    dry_run: bool = False,
    legacy: bool = False,
    older_than: float = 3600.0,
    budget: float | None = None,
) -> SweepReport:
    """Remove the holders in ``root`` (the system's temp directory by default) that are provably
    stale (see the module doc); ``dry_run`` only says what it would remove. ``legacy`` also
    removes lock-less holders unchanged for ``older_than`` seconds. Raises SandboxError when
    ``root`` cannot be read; a holder that cannot be removed is a FAILED verdict."""
    if legacy and not older_than >= MIN_LEGACY_AGE:
        raise ValueError(
            f"older_than must be at least {MIN_LEGACY_AGE:g} s for legacy holders, not {older_than!r}"
        )
    base = _root_path(root)
    report = SweepReport(base, dry_run)
    deadline = None if budget is None else time.monotonic() + budget
    try:
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SandboxError(f"cannot read the sandbox root {base}: {e.strerror or e}") from e
    try:
        with os.scandir(root_fd) as entries:
            names = sorted(entry.name for entry in entries if _candidate(entry.name))
        for name in names:
            if deadline is not None and time.monotonic() > deadline:
                report.complete = False
                break
            judge = _judge if _HOLDER_NAME.match(name) else _judge_legacy_tmp
            try:
                action, reason = judge(
                    root_fd, base, name, dry_run=dry_run, legacy=legacy, older_than=older_than
                )
            except OSError as e:
                action, reason = SKIPPED, f"cannot check it ({e.strerror or e})"
            report.verdicts.append(Verdict(os.path.join(base, name), action, reason))
    finally:
        os.close(root_fd)
    return report


def _candidate(name: str) -> bool:
    return bool(_HOLDER_NAME.match(name) or _LEGACY_TMP_NAME.match(name))


def _judge(
    root_fd: int, base: str, name: str, *, dry_run: bool, legacy: bool, older_than: float
) -> tuple[str, str]:
    """Check one candidate holder and remove it when it is provably stale: (action, reason)."""
    me = os.geteuid()
    try:
        st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return SKIPPED, "gone meanwhile"
    if not stat.S_ISDIR(st.st_mode):
        return SKIPPED, "not a directory (a link or a file): not a holder codeloop made"
    if st.st_uid != me:
        return SKIPPED, f"owned by uid {st.st_uid}, not by us (uid {me})"
    if stat.S_IMODE(st.st_mode) != HOLDER_MODE:
        return SKIPPED, f"mode {stat.S_IMODE(st.st_mode):#o}, not {HOLDER_MODE:#o} as codeloop makes a holder"
    try:
        holder = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
    except OSError as e:
        return SKIPPED, f"cannot open it ({e.strerror})"
    try:
        hst = os.fstat(holder)
        if (hst.st_dev, hst.st_ino, hst.st_uid, hst.st_mode) != (st.st_dev, st.st_ino, st.st_uid, st.st_mode):
            return SKIPPED, "replaced or changed while being checked"
        odd = _odd_entry(holder)
        if odd is not None:
            return SKIPPED, odd
        try:
            lst = os.stat(HOLDER_LOCK, dir_fd=holder, follow_symlinks=False)
        except FileNotFoundError:
            return _judge_lockless(
                root_fd, base, name, holder, hst, dry_run=dry_run, legacy=legacy, older_than=older_than
            )
        if not stat.S_ISREG(lst.st_mode):
            return SKIPPED, f"{HOLDER_LOCK} is not a regular file"
        try:
            lock = os.open(
                HOLDER_LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=holder
            )
        except OSError as e:
            return SKIPPED, f"cannot open {HOLDER_LOCK} ({e.strerror})"
        try:
            return _judge_locked(root_fd, name, holder, hst, lock, lst, dry_run=dry_run)
        finally:
            os.close(lock)  # lets go of the lock: after the removal, if there was one
    finally:
        os.close(holder)


def _odd_entry(holder: int) -> str | None:
    """Why the holder's contents are not what codeloop puts there; None when they are."""
    with os.scandir(holder) as entries:
        for entry in entries:
            if entry.name == HOLDER_LOCK:
                continue
            if entry.name != SESSION_NAME and not _TMP_NAME.match(entry.name):
                return f"holds {entry.name!r}, which codeloop never puts in a holder"
            if not entry.is_dir(follow_symlinks=False):
                return f"its {entry.name!r} is not a directory"
    return None


def _judge_locked(
    root_fd: int,
    name: str,
    holder: int,
    hst: os.stat_result,
    lock: int,
    lst: os.stat_result,
    *,
    dry_run: bool,
) -> tuple[str, str]:
    me = os.geteuid()
    fst = os.fstat(lock)
    if (fst.st_dev, fst.st_ino) != (lst.st_dev, lst.st_ino):
        return SKIPPED, f"{HOLDER_LOCK} was replaced while being checked"
    if not stat.S_ISREG(fst.st_mode) or fst.st_uid != me or fst.st_nlink != 1 or fst.st_size > _MAX_LOCK_SIZE:
        return SKIPPED, f"{HOLDER_LOCK} is not a small regular file of ours with one link"
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return SKIPPED, "in use: its owner holds the lock"
    except OSError as e:
        return SKIPPED, f"cannot test its lock ({e.strerror})"
    if os.fstat(lock).st_nlink != 1:  # another sweeper removed it while we waited for the lock
        return SKIPPED, "removed meanwhile"
    match = _LOCK_TEXT.match(os.pread(lock, _MAX_LOCK_SIZE + 1, 0).decode("ascii", "replace"))
    if match is None:
        return SKIPPED, f"{HOLDER_LOCK} does not say codeloop made it (or it is being made now)"
    if (int(match[3]), int(match[4])) != (hst.st_dev, hst.st_ino):
        return SKIPPED, f"{HOLDER_LOCK} names another directory"
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(match[2])))
    why = f"its owner (pid {match[1]}, made it {made}) is gone: nobody holds its lock"
    return _remove(root_fd, name, holder, why, dry_run=dry_run)


def _judge_lockless(
    root_fd: int,
    base: str,
    name: str,
    holder: int,
    hst: os.stat_result,
    *,
    dry_run: bool,
    legacy: bool,
    older_than: float,
) -> tuple[str, str]:
    if not legacy:
        return SKIPPED, (
            f"no {HOLDER_LOCK} (made by an older codeloop, or being made now), so no proof its owner is "
            "gone; `codeloop cleanup --legacy` removes such holders once old enough"
        )
    age, inodes = _age(holder, hst)
    if age < older_than:
        return SKIPPED, f"no {HOLDER_LOCK}, and it changed {age:.0f} s ago (not over {older_than:g} s)"
    user = _user_of(os.path.join(base, name), inodes)
    if user is not None:
        return SKIPPED, f"no {HOLDER_LOCK}, and process {user} works in it"
    why = f"no {HOLDER_LOCK}, looks exactly like codeloop's, unchanged for {age:.0f} s, no process seen in it"
    return _remove(root_fd, name, holder, why, dry_run=dry_run)


def _judge_legacy_tmp(
    root_fd: int, base: str, name: str, *, dry_run: bool, legacy: bool, older_than: float
) -> tuple[str, str]:
    """A ``codeloop-tmp-XXXXXXXX`` of an older codeloop: never locked, so only under ``legacy``."""
    if not legacy:
        return SKIPPED, (
            f"{_OLD_TMP} (never locked, so no proof its owner is gone); "
            "`codeloop cleanup --legacy` removes such directories once old enough"
        )
    me = os.geteuid()
    try:
        st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return SKIPPED, "gone meanwhile"
    if not stat.S_ISDIR(st.st_mode):
        return SKIPPED, "not a directory (a link or a file): not a private /tmp codeloop made"
    if st.st_uid != me and not (me == 0 and UID_BASE <= st.st_uid < UID_BASE + UID_COUNT):
        return SKIPPED, f"owned by uid {st.st_uid}: neither us (uid {me}) nor a session uid of ours"
    if stat.S_IMODE(st.st_mode) != _LEGACY_TMP_MODE:
        return SKIPPED, f"mode {stat.S_IMODE(st.st_mode):#o}, not {_LEGACY_TMP_MODE:#o} as codeloop made it"
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
    except OSError as e:
        return SKIPPED, f"cannot open it ({e.strerror})"
    try:
        fst = os.fstat(fd)
        if (fst.st_dev, fst.st_ino, fst.st_uid, fst.st_mode) != (st.st_dev, st.st_ino, st.st_uid, st.st_mode):
            return SKIPPED, "replaced or changed while being checked"
        age, inodes = _age(fd, fst)
        if age < older_than:
            return SKIPPED, f"{_OLD_TMP} that changed {age:.0f} s ago (not over {older_than:g} s)"
        user = _user_of(os.path.join(base, name), inodes)
        if user is not None:
            return SKIPPED, f"{_OLD_TMP}, and process {user} works in it"
        why = f"{_OLD_TMP} (no lock), unchanged for {age:.0f} s, no process seen in it"
        return _remove(root_fd, name, fd, why, dry_run=dry_run, remover=remove_tree_at)
    finally:
        os.close(fd)


def _age(fd: int, st: os.stat_result) -> tuple[float, set[tuple[int, int]]]:
    """Seconds since the directory ``fd`` (``st`` its stat) or an entry in it last changed, and the
    device and inode of it and of the directories right in it."""
    newest = st.st_mtime
    inodes = {(st.st_dev, st.st_ino)}
    with os.scandir(fd) as entries:
        for entry in entries:
            est = entry.stat(follow_symlinks=False)
            newest = max(newest, est.st_mtime)
            if stat.S_ISDIR(est.st_mode):
                inodes.add((est.st_dev, est.st_ino))
    return time.time() - newest, inodes


def _user_of(path: str, inodes: set[tuple[int, int]]) -> int | None:
    """A process that works in ``path``, among those /proc lets us see: its working directory is
    ``path`` or a directory right in it (by inode, which a bind mount shares) or below ``path`` (by
    name), its ``TMPDIR`` is there, or (another process) it has a file there open (an idle worker of an
    older codeloop has nothing else in its private /tmp)."""
    prefix = path + "/"

    def inside(where: str) -> bool:
        return where == path or where.startswith(prefix)

    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    me = os.getpid()
    for pid in pids:
        proc = f"/proc/{pid}"
        with contextlib.suppress(OSError):
            cwd = os.stat(f"{proc}/cwd")
            if (cwd.st_dev, cwd.st_ino) in inodes:
                return pid
        with contextlib.suppress(OSError):
            if inside(os.readlink(f"{proc}/cwd")):
                return pid
        with contextlib.suppress(OSError):
            with open(f"{proc}/environ", "rb") as f:
                env = f.read().split(b"\0")
            for var in env:
                if var.startswith(b"TMPDIR=") and inside(os.fsdecode(var[7:]).rstrip("/")):
                    return pid
        if pid == me:
            continue  # the sweep's own descriptors are there
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"{proc}/fd"):
                with contextlib.suppress(OSError):
                    if inside(os.readlink(f"{proc}/fd/{fd}")):
                        return pid
    return None


def _remove(
    root_fd: int,
    name: str,
    fd: int,
    why: str,
    *,
    dry_run: bool,
    remover: Callable[[int, str, int], None] = remove_holder_at,
) -> tuple[str, str]:
    if dry_run:
        return WOULD_REMOVE, why
    try:
        remover(root_fd, name, fd)
    except OSError as e:
        return FAILED, f"{why}; removing it failed: {e}"
    return REMOVED, why


# --- the automatic sweep ------------------------------------------------------------------------

_last: dict[str, float] = {}
_last_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    global _last_lock
    _last_lock = threading.Lock()  # a fork while another thread held it must not leave it locked


os.register_at_fork(after_in_child=_new_lock_after_fork)


def sweep_soon(root: str | os.PathLike[str] | None) -> None:
    """Sweep ``root`` on a daemon thread, unless this process did within ``SWEEP_INTERVAL``.

    Cheap for the caller (a dictionary look-up, at most a thread start) and never raises."""
    try:
        base = _root_path(root)
        now = time.monotonic()
        with _last_lock:
            last = _last.get(base)
            if last is not None and now - last < SWEEP_INTERVAL:
                return
            _last[base] = now
        threading.Thread(target=_sweep_quietly, args=(base,), name="codeloop-sweep", daemon=True).start()
    except Exception as e:  # e.g. no new thread at interpreter exit: the next start sweeps
        log.debug("codeloop: no sweep of %s: %r", root, e)


def _sweep_quietly(base: str) -> None:
    try:
        report = sweep(Path(base), budget=SWEEP_BUDGET)
    except Exception as e:
        log.debug("codeloop: sweeping %s failed: %r", base, e)
        return
    for verdict in report.verdicts:
        log.debug("codeloop: sweep: %s %s: %s", verdict.action, verdict.path, verdict.reason)
    if not report.complete:
        log.debug("codeloop: sweep of %s stopped after %g s; the next one goes on", base, SWEEP_BUDGET)
