"""Write a workflow's changes into a user's files: atomically, with a backup, and only if unchanged.

``write_changes`` is the only place ``fix`` and ``debug`` touch a user's tree (and only with
``--write``). For each file it checks the bytes on disk are still the bytes the workflow read (a
file edited meanwhile is refused, nothing written), writes the new text to a fresh temporary file
beside it (``O_EXCL``, same mode, fsynced), keeps the original as a backup (a hard link to the old
inode, or a copy where links are not possible) and renames the new file over the old one, so a
reader sees the old or the new file, never half of one. If any file fails, the files already
replaced are put back from their backups.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from codeloop.workflows.snapshot import InputError, read_nofollow

__all__ = ["Written", "backup_name", "write_changes"]


@dataclass(frozen=True)
class Written:
    """One replaced file and where its original was kept."""

    path: Path
    backup: Path


def backup_name(path: Path, suffix: str = ".orig") -> Path:
    """``file.py.orig``, or ``file.py.orig.1``, ``.2``... when that name is taken."""
    candidate = path.with_name(path.name + suffix)
    n = 0
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}{suffix}.{n}")
    return candidate


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.codeloop-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, stat.S_IMODE(mode))  # our own new file: give it the original's permissions
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _keep_backup(path: Path, original: bytes, mode: int, suffix: str) -> Path:
    backup = backup_name(path, suffix)
    try:
        os.link(path, backup, follow_symlinks=False)
    except OSError:
        fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, original)
            os.fchmod(fd, stat.S_IMODE(mode))
            os.fsync(fd)
        finally:
            os.close(fd)
    return backup


def write_changes(
    changes: dict[Path, tuple[bytes, str]], *, backup_suffix: str = ".orig"
) -> list[Written]:
    """Replace each ``path`` whose current bytes equal ``expected`` with ``new_text`` (UTF-8).

    ``changes`` maps a path to ``(expected_bytes, new_text)``. Raises :class:`InputError`, with
    nothing changed, when a file is a link, is missing, or no longer holds the expected bytes.
    """
    prepared: list[tuple[Path, bytes, Path, int]] = []
    try:
        for path, (expected, new_text) in changes.items():
            if os.path.islink(path):
                raise InputError(f"{path} is a symbolic link; not writing through it")
            current = read_nofollow(path)
            if current != expected:
                raise InputError(f"{path} changed since codeloop read it; nothing was written")
            mode = os.stat(path, follow_symlinks=False).st_mode
            tmp = _write_temp(path, new_text.encode("utf-8"), mode)
            prepared.append((path, current, tmp, mode))
    except BaseException:
        for _path, _cur, tmp, _mode in prepared:
            os.unlink(tmp)
        raise
    done: list[Written] = []
    pending: Path | None = None  # a backup made for a file not yet replaced
    try:
        for path, current, tmp, mode in prepared:
            pending = _keep_backup(path, current, mode, backup_suffix)
            os.replace(tmp, path)
            done.append(Written(path=path, backup=pending))
            pending = None
    except BaseException:
        if pending is not None:  # our own backup of a file that was not replaced
            os.unlink(pending)
        for w in done:  # put back what was already replaced
            os.replace(w.backup, w.path)
        for _path, _cur, tmp, _mode in prepared:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        raise
    return done
