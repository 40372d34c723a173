"""matplotlib's font cache, built once on the host and copied into each new session's HOME.

Every session has its own HOME (its directory), so matplotlib's first ``import pyplot`` in a
session scanned the system's fonts again and wrote ``~/.cache/matplotlib/fontlist-*.json``.
The host now builds that file once per interpreter, in a process of its own with an empty HOME
(what a session sees), under ``user_dir()/mpl-cache/<interpreter key>/``, and copies it into each
new session directory before its first cell. Each session gets its own copy, owned by its uid:
no session can change what another reads, and a session that breaks its copy only slows itself.

The build is demand-driven: it starts (on a background thread) the first time a session reports
that it imported matplotlib's font manager, so hosts that never plot never pay for it. Builds in
several host processes are serialised by a lock file and published atomically; a stamp records
the matplotlib install the cache was built from, and a different install makes it stale.
"""

from __future__ import annotations

import atexit
import binascii
import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.config import user_dir

__all__ = ["build", "build_settled", "cache_dir", "ready_files", "request_build", "seed"]

#: where matplotlib looks for its cache in a session (HOME is the session directory)
SESSION_CACHE = (".cache", "matplotlib")
_STAMP = "stamp.json"
_BUILD_TIMEOUT = 300.0
_RETRY_AFTER = 600.0  # seconds before a failed build (no matplotlib, say) is tried again
_STALE_BUILD_DIR = 3600.0

# Runs in the session's interpreter with an empty HOME: builds the cache into MPLCONFIGDIR and says
# which matplotlib install it came from.
_BUILD_SCRIPT = """
import json, os, sys
import matplotlib
from matplotlib import font_manager
font_manager.fontManager  # the module builds and saves the cache on import; touch it to be sure
init = matplotlib.__file__
st = os.stat(init)
print(json.dumps({"matplotlib": init, "mtime_ns": st.st_mtime_ns, "size": st.st_size}))
"""


@dataclass
class _Entry:
    """What this process knows about one interpreter's cache."""

    checked: bool = False
    files: list[Path] = field(default_factory=list)  # the published cache files, once valid
    building: int = 0  # builds running in this process (a requested one, plus any by hand)
    failed_at: float | None = None


_lock = threading.Lock()
_entries: dict[Path, _Entry] = {}
_builds: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_builds() -> None:
    for proc in list(_builds):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc.kill()
            proc.wait(1.0)


def cache_dir(python: str) -> Path:
    """The cache directory of one interpreter (by its path) under the user dir (OSError if the
    user dir cannot be created)."""
    return _cache_dir(python, os.environ.get("CODELOOP_HOME"))


def _where(python: str) -> Path | None:
    """cache_dir, or None where there is no usable user dir (a read-only HOME): no cache then."""
    try:
        return cache_dir(python)
    except OSError:
        return None


@functools.lru_cache(maxsize=32)
def _cache_dir(python: str, _home: str | None) -> Path:  # _home: a new CODELOOP_HOME is a new place
    # abspath, not realpath: a venv's python links to its base interpreter, but the venv decides
    # which matplotlib (and fonts) it sees
    path = os.path.abspath(python)
    slug = "".join(c if c.isalnum() or c in "-." else "_" for c in path.strip("/"))[-60:]
    key = f"{slug}-{binascii.crc32(path.encode('utf-8', 'surrogateescape')):08x}"
    return user_dir() / "mpl-cache" / key


def _entry(where: Path) -> _Entry:
    entry = _entries.get(where)
    if entry is None:
        entry = _entries[where] = _Entry()
    return entry


def _valid_files(where: Path) -> list[Path]:
    """The published cache files if the stamp matches the matplotlib install on disk, else []."""
    try:
        stamp = json.loads((where / _STAMP).read_text(encoding="utf-8"))
        st = os.stat(stamp["matplotlib"])
        if (st.st_mtime_ns, st.st_size) != (stamp["mtime_ns"], stamp["size"]):
            return []
        files = [where / name for name in stamp["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not files or not all(f.is_file() for f in files):
        return []
    return files


def ready_files(python: str) -> list[Path]:
    """The font cache files to give a session of ``python``; [] until a valid build exists."""
    where = _where(python)
    if where is None:
        return []
    with _lock:
        entry = _entry(where)
        if entry.checked:
            return entry.files
    files = _valid_files(where)  # once per process and interpreter: a stamp read and a stat
    with _lock:
        entry.checked = True
        entry.files = files
    return files


def build_settled(python: str) -> bool:
    """Whether no build for ``python`` is running in this process (for callers that wait)."""
    where = _where(python)
    with _lock:
        entry = _entries.get(where) if where is not None else None
        return entry is None or entry.building == 0


def request_build(python: str) -> None:
    """Start a background build for ``python`` unless one is ready, running or failed lately."""
    where = _where(python)
    if where is None or ready_files(python):
        return
    with _lock:
        entry = _entry(where)
        recent_failure = entry.failed_at is not None and time.monotonic() - entry.failed_at < _RETRY_AFTER
        if entry.building or recent_failure:
            return
        entry.building += 1  # counted from now, so a caller waiting on build_settled sees it at once
    threading.Thread(
        target=_counted_build, args=(where, python, _BUILD_TIMEOUT, entry), name="codeloop-mpl-cache", daemon=True
    ).start()


def build(python: str, timeout: float = _BUILD_TIMEOUT) -> bool:
    """Build and publish the cache for ``python`` now (blocking); True when a valid one exists.

    Another process building at the same time holds the lock file; this call then waits for it
    and uses its result.
    """
    where = _where(python)
    if where is None:
        return False
    with _lock:
        entry = _entry(where)
        entry.building += 1
    return _counted_build(where, python, timeout, entry)


def _counted_build(where: Path, python: str, timeout: float, entry: _Entry) -> bool:
    """The build itself, for a caller that has counted it in ``entry.building``; never raises."""
    ok = False
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(where / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per interpreter across host processes
            files = _valid_files(where)
            if not files:
                _remove_stale_build_dirs(where)
                files = _build_into(where, python, timeout)
        ok = bool(files)
        with _lock:
            entry.checked, entry.files = True, files
            entry.failed_at = None if ok else time.monotonic()
    except Exception:  # no matplotlib, a crash, odd output: sessions build their own meanwhile
        with _lock:
            entry.failed_at = time.monotonic()
    finally:
        with _lock:
            entry.building -= 1
    return ok


def _build_into(where: Path, python: str, timeout: float) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=where))
    try:
        home, config = work / "home", work / "mplconfig"
        home.mkdir()
        config.mkdir()
        env = {
            "PATH": os.pathsep.join([os.path.dirname(python), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(home),
            "MPLCONFIGDIR": str(config),
            "MPLBACKEND": "Agg",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        proc = subprocess.Popen(
            [python, "-I", "-c", _BUILD_SCRIPT],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=str(home),
            start_new_session=True,
        )
        _builds.add(proc)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _builds.discard(proc)
        if proc.returncode != 0:
            return []
        stamp = json.loads(out.decode("utf-8").strip().splitlines()[-1])
        built = sorted(config.glob("fontlist-*.json"))
        if not built:
            return []
        for f in built:
            os.replace(f, where / f.name)
        stamp["files"] = [f.name for f in built]
        tmp = work / _STAMP
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(tmp, where / _STAMP)  # published: readers see the whole stamp or the old one
        return _valid_files(where)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_stale_build_dirs(where: Path) -> None:
    """Build dirs a killed host process left behind (only ever under the lock)."""
    for old in where.glob("build-*"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > _STALE_BUILD_DIR:
                shutil.rmtree(old, ignore_errors=True)


def seed(session_dir: Path, python: str) -> bool:
    """Copy a ready font cache into ``session_dir/.cache/matplotlib`` (owned like the directory).

    Safe on a directory a session uid owns: every step goes through descriptors opened with
    O_NOFOLLOW, the file is written under a fresh name and renamed into place, and a cache file
    the session already has is kept. False when no cache is ready or the copy failed.
    """
    files = ready_files(python)
    if not files:
        return False
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(session_dir, flags)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        owner = (st.st_uid, st.st_gid) if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()) else None
        for part in SESSION_CACHE:
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                made = True
            except FileExistsError:
                made = False
            sub = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = sub
            if made and owner is not None:
                os.fchown(fd, *owner)
        for src in files:
            _copy_into(fd, src, owner)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _copy_into(dir_fd: int, src: Path, owner: tuple[int, int] | None) -> None:
    name = src.name
    with contextlib.suppress(FileNotFoundError):
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return  # the session has its own: keep it
    tmp = f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with open(src, "rb") as f:
            data = f.read()
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
        if owner is not None:
            os.fchown(out, *owner)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(out)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
