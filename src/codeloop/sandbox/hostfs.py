"""Host-side file housekeeping of sessions: make and remove session trees, by descriptor only.

Everything here touches only trees codeloop created itself, and never follows a link: a session
(or anything else) may have filled them with symlinks, hard links, unreadable directories or a
directory thousands of levels deep, and may have removed or renamed parts of them.

* ``new_session_dir(root)`` makes ``<root>/codeloop-XXXX/session``: the outer directory (the
  *holder*) is the caller's (mode 0711, so a session uid can only pass through it), the inner one
  is the session's. A session uid cannot rename or replace its own directory, because the
  directory holding it is not the session's and is not in a world-writable place. The holder also
  gets a lock file, ``holder.lock``, on which this process holds an exclusive ``flock`` for the
  session's whole life (the descriptor is kept here, closed by ``remove_session``): a holder whose
  lock nobody holds belongs to a dead process, which ``codeloop.sandbox.leftovers`` may remove.
* ``new_private_tmp(root)`` makes ``<root>/codeloop-XXXX/tmp-XXXX``, a jail's private /tmp when
  its session directory is not in a holder (the low-level launch API), in a holder of its own,
  locked the same way; ``remove_private_tmp(path)`` removes it with that holder.
* ``remove_session(path)`` removes a session with its holder: the session and ``tmp-*`` subtrees
  first, the lock file last, so a removal cut short still leaves a holder a later sweep can prove
  stale and finish.
* ``remove_tree(path)`` removes a directory codeloop made, with everything in it: it walks by
  file descriptor (``openat`` with ``O_NOFOLLOW``, ``unlinkat``), iteratively (no recursion, so
  any depth), fixes permissions only *inside* the tree, treats a missing tree as removed, and never
  changes anything about the directory that holds ``path``.
* ``open_private_dir(path)`` opens (making it if missing) a directory of our own that nobody else
  can write, for lock files (session uids, session cgroups); None when ``path`` is not one.
* ``chown_fresh_tree(path, uid, gid)`` hands a directory codeloop just made (and filled) to a
  session uid: by descriptor, only entries we own with a single link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from codeloop.errors import SandboxError

__all__ = [
    "HOLDER_LOCK",
    "HOLDER_MAGIC",
    "HOLDER_MODE",
    "SESSION_NAME",
    "TMP_PREFIX",
    "chown_fresh_tree",
    "new_private_tmp",
    "new_session_dir",
    "open_private_dir",
    "remove_holder_at",
    "remove_private_tmp",
    "remove_session",
    "remove_tree",
    "remove_tree_at",
]

#: the name of a session directory inside its private holder ``codeloop-XXXX``
SESSION_NAME = "session"
#: a jail's private /tmp in a holder is ``tmp-`` and the 8 characters ``tempfile.mkdtemp`` draws
TMP_PREFIX = "tmp-"
#: the holder's lock file: its owner holds an exclusive flock on it while the session lives
HOLDER_LOCK = "holder.lock"
#: the first line of a holder's lock file (then ``pid N``, ``created T``, ``holder DEV:INO``)
HOLDER_MAGIC = "codeloop session holder v1"
#: the mode a holder is given (traversable by a session uid, not listable, not writable)
HOLDER_MODE = 0o711
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: descriptors held open at most while walking down; deeper subtrees are moved up first
_MAX_DEPTH = 48


#: holder path -> the descriptor of its lock file, locked by this process while the session lives
_held: dict[str, int] = {}
_held_lock = threading.Lock()


def _forget_held_after_fork() -> None:
    """In a forked child: close the copies of the parent's lock descriptors (the parent's locks stay
    held: a flock belongs to the open file, which the parent still has open; a child never unlocks)."""
    global _held_lock
    for fd in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()
    _held_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_held_after_fork)


def _lock_holder(holder: str) -> int | None:
    """Create the holder's lock file, take its flock, then write who we are; the descriptor, or
    None when this filesystem will not lock (the holder is then left without a lock file).

    The content is written only under the lock, so a sweeper that wins the lock before us reads
    an empty file and leaves the holder alone; one that reads the content finds the lock held.
    """
    hfd = os.open(holder, _DIR_FLAGS)
    try:
        fd = os.open(
            HOLDER_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=hfd
        )
        try:
            for _ in range(1000):  # a sweeper holds an empty lock file's flock for microseconds
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.001)
            else:
                raise BlockingIOError(errno.EWOULDBLOCK, "the holder lock stayed taken")
            st = os.fstat(hfd)
            text = f"{HOLDER_MAGIC}\npid {os.getpid()}\ncreated {time.time():.6f}\n"
            os.pwrite(fd, f"{text}holder {st.st_dev}:{st.st_ino}\n".encode("ascii"), 0)
            return fd
        except OSError:  # no flock here (some network filesystems): no lock file, no automatic sweep
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(HOLDER_LOCK, dir_fd=hfd)
            return None
    finally:
        os.close(hfd)


def _new_holder(root: Path | str | None, fill: Callable[[str], str]) -> str:
    """Make a holder ``<root>/codeloop-XXXX`` (mode 0711, locked by this process until
    ``_remove_holder``) and ``fill(holder)`` it; returns what ``fill`` returned. On any OSError the
    holder is removed again."""
    base = os.path.abspath(root if root is not None else tempfile.gettempdir())
    holder = tempfile.mkdtemp(prefix="codeloop-", dir=base)
    lock_fd: int | None = None
    try:
        os.chmod(holder, HOLDER_MODE)
        lock_fd = _lock_holder(holder)
        inner = fill(holder)
    except OSError:
        try:
            remove_tree(Path(holder))
        finally:
            if lock_fd is not None:
                os.close(lock_fd)
        raise
    if lock_fd is not None:
        with _held_lock:
            _held[holder] = lock_fd
    return inner


def _make_session(holder: str) -> str:
    session = os.path.join(holder, SESSION_NAME)
    os.mkdir(session, 0o700)
    return session


def new_session_dir(root: Path | None) -> Path:
    """A fresh private session directory ``<root>/codeloop-XXXX/session`` (both made here), its
    holder locked by this process until ``remove_session``."""
    return Path(_new_holder(root, _make_session))


def new_private_tmp(root: Path | str | None = None) -> Path:
    """A fresh private /tmp ``<root>/codeloop-XXXX/tmp-XXXX`` (``root``: the system temp directory
    by default) for a jail whose session directory is not in a holder: the holder is locked by this
    process until ``remove_private_tmp``, so a sweep removes it only once this process is gone."""
    return Path(_new_holder(root, lambda holder: tempfile.mkdtemp(prefix=TMP_PREFIX, dir=holder)))


def _remove_holder(holder: Path) -> None:
    """Remove a holder this process made, then let go of its lock (also when the removal failed:
    a later sweep may then finish it)."""
    key = os.path.abspath(holder)
    try:
        _remove_path(key, remove_holder_at)
    finally:
        with _held_lock:
            fd = _held.pop(key, None)
        if fd is not None:
            os.close(fd)


def remove_session(session_dir: Path) -> None:
    """Remove a session directory made by ``new_session_dir``, with its private holder; then let
    go of the holder's lock (also when the removal failed: a later sweep may then finish it)."""
    session_dir = Path(session_dir)
    holder = session_dir.parent
    if session_dir.name == SESSION_NAME and holder.name.startswith("codeloop-"):
        _remove_holder(holder)
    else:  # a directory from an older layout: remove just it
        remove_tree(session_dir)


def remove_private_tmp(tmp: Path | str) -> None:
    """Remove a private /tmp made by ``new_private_tmp`` with its holder, then let go of the lock."""
    tmp = Path(tmp)
    if not (tmp.name.startswith(TMP_PREFIX) and tmp.parent.name.startswith("codeloop-")):
        raise SandboxError(f"refusing to remove {tmp}: not a private /tmp made by new_private_tmp")
    _remove_holder(tmp.parent)


def _make_writable(fd: int) -> None:
    """Give the owner rwx on a directory of the tree (by descriptor, never by name)."""
    st = os.fstat(fd)
    if st.st_mode & 0o700 != 0o700:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)


def _open_dir(parent: int, name: str) -> int | None:
    """Open a subdirectory without following links; None when it is gone or not a directory."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return None
    except PermissionError:
        pass  # not readable by us (a non-root caller, a directory made 0000): fix it, by descriptor
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):  # replaced by a link or a file meanwhile
            _unlink(parent, name)
            return None
        raise
    path_fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        # An O_PATH descriptor cannot be fchmod'ed; its /proc/self/fd entry names exactly that inode.
        os.chmod(f"/proc/self/fd/{path_fd}", 0o700)
    finally:
        os.close(path_fd)
    return os.open(name, _DIR_FLAGS, dir_fd=parent)


def _unlink(parent: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        return
    except PermissionError:
        _make_writable(parent)
        os.unlink(name, dir_fd=parent)


def _rmdir(parent: int, name: str) -> None:
    try:
        os.rmdir(name, dir_fd=parent)
    except FileNotFoundError:
        return
    except PermissionError:
        _make_writable(parent)
        os.rmdir(name, dir_fd=parent)


def _level(fd: int) -> list[str]:
    """Remove every non-directory in the directory ``fd``; return its subdirectories' names."""
    try:
        with os.scandir(fd) as entries:
            found = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    except PermissionError:
        _make_writable(fd)
        with os.scandir(fd) as entries:
            found = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    subdirs = []
    for name, is_dir in found:
        if is_dir:
            subdirs.append(name)
        else:
            try:
                _unlink(parent=fd, name=name)
            except IsADirectoryError:  # replaced by a directory meanwhile
                subdirs.append(name)
    return subdirs


def _empty(top: int) -> None:
    """Remove everything inside the directory ``top`` (not ``top`` itself), iteratively.

    At most ``_MAX_DEPTH`` descriptors are open at once: a subtree deeper than that is first
    moved up into ``top`` (a rename inside the tree) and removed from there.
    """
    stack: list[tuple[int, str | None, list[str]]] = [(top, None, _level(top))]
    moved = 0
    try:
        while stack:
            fd, _name, pending = stack[-1]
            if pending:
                sub = pending.pop()
                if len(stack) >= _MAX_DEPTH:
                    while True:
                        moved += 1
                        target = f".codeloop-deep-{moved}"
                        try:
                            os.stat(target, dir_fd=top, follow_symlinks=False)
                        except FileNotFoundError:
                            break
                    os.rename(sub, target, src_dir_fd=fd, dst_dir_fd=top)
                    stack[0][2].append(target)
                    continue
                child = _open_dir(fd, sub)
                if child is not None:
                    try:
                        stack.append((child, sub, _level(child)))
                    except BaseException:
                        os.close(child)
                        raise
                continue
            stack.pop()
            if stack:  # a subdirectory, now empty: remove it from its parent
                os.close(fd)
                _rmdir(stack[-1][0], _name or "")
    finally:
        for fd, _name, _pending in stack[1:]:
            os.close(fd)


def remove_tree_at(parent: int, name: str, fd: int) -> None:
    """Empty the directory ``fd`` (``name`` in ``parent``, opened by the caller without following
    links), then remove it from ``parent``; never changes ``parent`` otherwise."""
    _empty(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=parent)  # never a chmod of ``parent``: it is not ours


def remove_holder_at(parent: int, name: str, holder: int) -> None:
    """Remove the holder ``name`` of the directory ``parent``, already open as ``holder`` (by the
    caller, without following links): its subdirectories (``session``, ``tmp-*``) first, then
    the rest (its lock file), then the holder itself. Raises OSError when something stays."""
    with os.scandir(holder) as entries:
        subdirs = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    for sub in subdirs:
        child = _open_dir(holder, sub)
        if child is not None:
            try:
                remove_tree_at(holder, sub, child)
            finally:
                os.close(child)
    remove_tree_at(parent, name, holder)


def _remove_path(path: Path | str, remove: Callable[[int, str, int], None]) -> None:
    """Open ``path``'s parent and ``path`` (never following a link at ``path``) and ``remove`` it."""
    path = os.path.abspath(path)
    parent_path, name = os.path.split(path)
    if not name:
        raise SandboxError(f"refusing to remove {path!r}: not a directory codeloop made")
    try:
        parent = os.open(parent_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise SandboxError(f"cannot remove {path}: {e}") from e
    try:
        try:
            fd = _open_dir(parent, name)
        except PermissionError as e:
            raise SandboxError(f"cannot remove {path}: {e}") from e
        if fd is None:
            return
        try:
            remove(parent, name, fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise SandboxError(f"cannot remove {path} completely: {e}") from e
    finally:
        os.close(parent)


def remove_tree(path: Path | str) -> None:
    """Remove the directory ``path`` (one codeloop made) and everything in it; see the module doc.

    A missing ``path`` counts as removed; a ``path`` that is now a link or a file is left alone
    (it is not what codeloop made). Raises SandboxError when something could not be removed.
    """
    _remove_path(path, remove_tree_at)


def open_private_dir(path: Path) -> int | None:
    """An O_DIRECTORY descriptor of ``path`` if it is a real directory (no link anywhere in its last
    component), owned by us and writable by nobody else; made if missing. None otherwise."""
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    fd = os.open(path, _DIR_FLAGS)
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022:
        return fd
    os.close(fd)
    return None


def chown_fresh_tree(path: Path | str, uid: int, gid: int) -> None:
    """Hand a directory codeloop just made (and what codeloop put in it) to a session uid.

    By descriptor, never following links; only entries owned by us with one link are handed over
    (a hard link to a file elsewhere would turn the chown into a chown of that file).
    """
    me = os.geteuid()
    top = os.open(path, _DIR_FLAGS)
    stack = [top]
    try:
        st = os.fstat(top)
        if st.st_uid == me:
            os.fchown(top, uid, gid)
        while stack:
            fd = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    names = [entry.name for entry in entries]
                for name in names:
                    est = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if est.st_uid != me:
                        continue
                    if stat.S_ISDIR(est.st_mode):
                        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                        os.fchown(sub, uid, gid)
                        stack.append(sub)
                    elif est.st_nlink == 1 and not stat.S_ISLNK(est.st_mode):
                        os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
            finally:
                if fd != top:
                    os.close(fd)
    finally:
        for fd in stack:
            if fd != top:
                os.close(fd)
        os.close(top)
