"""Read a user's project into memory, read-only: the files ``fix`` and ``debug`` copy into a sandbox.

Nothing here writes. The walk goes by directory file descriptor and never follows a symbolic link
(a link is listed as skipped), so what is read is exactly the tree under the root. Tool and cache
directories (``.git``, virtual environments, ``__pycache__``...) are left out, and the whole copy is
bounded in files and bytes so a wrong ``PATH`` (a home directory) fails fast with a clear message.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from codeloop.errors import CodeloopError

__all__ = [
    "InputError",
    "Project",
    "Snapshot",
    "find_project_root",
    "is_test_path",
    "read_nofollow",
    "resolve_project",
    "take_snapshot",
]

#: directories never copied (tools, caches, environments, version control)
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "__pycache__", "node_modules", ".tox",
        ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".vscode", "build", "dist", ".eggs",
    }
)
#: files whose presence marks the root of a project
ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", ".git")
MAX_FILES = 2000
MAX_BYTES = 32 << 20
MAX_FILE_BYTES = 4 << 20


class InputError(CodeloopError):
    """A user mistake in what a workflow was given: a missing file, a syntax error, no tests."""


def is_test_path(rel: str) -> bool:
    """Whether a project-relative path is part of the tests (never edited by ``fix``).

    Test modules (``test_*.py``, ``*_test.py``), ``conftest.py``, anything under a ``test`` or
    ``tests`` directory, and the files that configure pytest.
    """
    p = PurePosixPath(rel)
    name = p.name
    if name in ("conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "noxfile.py"):
        return True
    if name.startswith("test_") or name.endswith("_test.py") or name == "tests.py":
        return True
    return any(part in ("test", "tests", "testing") for part in p.parts[:-1])


def read_nofollow(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, refusing links, devices and files over ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as e:
        if os.path.islink(path):
            raise InputError(f"{path} is a symbolic link; give the file it points to") from None
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return _read_fd(fd, str(path), limit)
    finally:
        os.close(fd)


def _read_fd(fd: int, label: str, limit: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{label} is not a regular file")
    if info.st_size > limit:
        raise InputError(f"{label} is {info.st_size} bytes, over the {limit} byte limit")
    chunks = []
    total = 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise InputError(f"{label} grew past the {limit} byte limit while being read")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Snapshot:
    """The files of a project (project-relative POSIX path -> bytes) and what was left out."""

    root: Path
    files: dict[str, bytes]
    skipped: list[str] = field(default_factory=list)

    def text(self, rel: str) -> str:
        return self.files[rel].decode("utf-8", "replace")

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def take_snapshot(
    root: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES, extra_skip: Iterable[str] = ()
) -> Snapshot:
    """Read every file under ``root`` (not following links, skipping tool directories), bounded."""
    skip_dirs = SKIP_DIRS | set(extra_skip)
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    total = 0
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        keep = []
        for d in sorted(dirnames):
            if d in skip_dirs or d.endswith(".egg-info"):
                continue
            try:
                st = os.stat(d, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                skipped.append(_join(rel_dir, d) + " (symbolic link)")
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = _join(rel_dir, name)
            if name.endswith((".pyc", ".pyo")):
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dirfd)
            except OSError:
                skipped.append(rel + " (a link or unreadable)")
                continue
            try:
                data = _read_fd(fd, rel, MAX_FILE_BYTES)
            except InputError as e:
                skipped.append(f"{rel} ({e})")
                continue
            finally:
                os.close(fd)
            files[rel] = data
            total += len(data)
            if len(files) > max_files or total > max_bytes:
                raise InputError(
                    f"{root} holds more than {max_files} files or {max_bytes >> 20} MiB; "
                    "point codeloop at the project's own directory (or pass --root)"
                )
    return Snapshot(root=root, files=files, skipped=skipped)


def _join(rel_dir: str, name: str) -> str:
    return name if rel_dir in (".", "") else PurePosixPath(rel_dir, name).as_posix()


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` that looks like a project root, else ``start``."""
    for candidate in (start, *start.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
        if candidate == Path.home() or candidate == Path(candidate.anchor):
            break
    return start


@dataclass(frozen=True)
class Project:
    """Where a workflow works: the root directory and the target files in it (relative paths)."""

    root: Path
    targets: list[str]


def resolve_project(paths: Sequence[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None) -> Project:
    """The project root and the Python files to work on, from the PATHs a user gave.

    A directory names all its non-test Python files; a file names itself. The root is ``root`` when
    given, else a single directory PATH, else the nearest project root above the files.
    """
    if not paths:
        raise InputError("give at least one file or directory")
    resolved = []
    for p in paths:
        path = Path(p).absolute()
        if not path.exists():
            raise InputError(f"no such file or directory: {p}")
        resolved.append(path)
    if root is not None:
        base = Path(root).absolute()
        if not base.is_dir():
            raise InputError(f"--root {root} is not a directory")
    elif len(resolved) == 1 and resolved[0].is_dir():
        base = resolved[0]
    else:
        common = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in resolved]))
        base = find_project_root(common)
    targets: list[str] = []
    for path in resolved:
        try:
            rel_path = path.relative_to(base)
        except ValueError:
            raise InputError(f"{path} is outside the project root {base}") from None
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
                for name in sorted(filenames):
                    rel = Path(dirpath, name).relative_to(base).as_posix()
                    if name.endswith(".py") and not is_test_path(rel):
                        targets.append(rel)
        elif path.suffix != ".py":
            raise InputError(f"{p} is not a Python file")
        else:
            targets.append(rel_path.as_posix())
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise InputError("no Python source files to work on (test files are never edited)")
    return Project(root=base, targets=targets)
