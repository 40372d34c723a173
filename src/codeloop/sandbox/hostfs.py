"""Host-side file housekeeping of sessions: make and remove session trees, by descriptor only.

Everything here touches only trees codeloop created itself, and never follows a link: a session
(or anything else) may have filled them with symlinks, hard links, unreadable directories or a
directory thousands of levels deep, and may have removed or renamed parts of them.

* ``new_session_dir(root)`` makes ``<root>/codeloop-XXXX/session``: the outer directory is the
  caller's (mode 0711, so a session uid can only pass through it), the inner one is the session's.
  A session uid cannot rename or replace its own directory, because the directory holding it is
  not the session's and is not in a world-writable place.
* ``remove_tree(path)`` removes a directory codeloop made, with everything in it: it walks by
  file descriptor (``openat`` with ``O_NOFOLLOW``, ``unlinkat``), iteratively (no recursion, so
  any depth), fixes permissions only *inside* the tree, treats a missing tree as removed, and never
  changes anything about the directory that holds ``path``.
* ``chown_fresh_tree(path, uid, gid)`` hands a directory codeloop just made (and filled) to a
  session uid: by descriptor, only entries we own with a single link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from codeloop.errors import SandboxError

__all__ = ["SESSION_NAME", "chown_fresh_tree", "new_session_dir", "remove_session", "remove_tree"]

#: the name of a session directory inside its private holder ``codeloop-XXXX``
SESSION_NAME = "session"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: descriptors held open at most while walking down; deeper subtrees are moved up first
_MAX_DEPTH = 48


def new_session_dir(root: Path | None) -> Path:
    """A fresh private session directory ``<root>/codeloop-XXXX/session`` (both made here)."""
    holder = tempfile.mkdtemp(prefix="codeloop-", dir=root)
    try:
        os.chmod(holder, 0o711)  # traversable by a session uid, not listable, not writable
        session = os.path.join(holder, SESSION_NAME)
        os.mkdir(session, 0o700)
    except OSError:
        remove_tree(Path(holder))
        raise
    return Path(session)


def remove_session(session_dir: Path) -> None:
    """Remove a session directory made by ``new_session_dir``, with its private holder."""
    session_dir = Path(session_dir)
    holder = session_dir.parent
    if session_dir.name == SESSION_NAME and holder.name.startswith("codeloop-"):
        remove_tree(holder)
    else:  # a directory from an older layout: remove just it
        remove_tree(session_dir)


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


def remove_tree(path: Path | str) -> None:
    """Remove the directory ``path`` (one codeloop made) and everything in it; see the module doc.

    A missing ``path`` counts as removed; a ``path`` that is now a link or a file is left alone
    (it is not what codeloop made). Raises SandboxError when something could not be removed.
    """
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
            _empty(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(name, dir_fd=parent)  # never a chmod of ``parent``: it is not ours
    except OSError as e:
        raise SandboxError(f"cannot remove {path} completely: {e}") from e
    finally:
        os.close(parent)


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
