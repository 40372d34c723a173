"""Per-session memory and pids cgroups (v1 or v2), nested under the caller's own cgroup.

Nesting keeps every limit an outer fence sets (a CI job, the test suite) in force for the
sessions too. The worker joins its group before bubblewrap runs (``preexec``: a write of "0" to
pre-opened ``cgroup.procs`` files), so no process of the session is ever outside it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codeloop.errors import SandboxError

__all__ = ["CgroupRoot", "SessionCgroup", "find_root"]

_CONTROLLERS = ("memory", "pids")
_counter = itertools.count(1)
_lock = threading.Lock()


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
        _remove_stale(parent.parent)
    return root, ""


def _remove_stale(container: Path) -> None:
    """Delete the groups of codeloop processes that died without cleaning up.

    Best effort: other codeloop processes starting at the same moment clean up the same groups,
    so one may vanish between listing and removal; that must never stop this process starting.
    """
    try:
        stale = list(container.glob("codeloop-*"))
    except OSError:
        return
    for d in stale:
        pid = d.name.removeprefix("codeloop-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        try:
            children = [child for child in d.iterdir() if child.is_dir()]
        except OSError:  # removed meanwhile by another process's cleanup
            continue
        for child in children:
            SessionCgroup(CgroupRoot(1, {}), {"stale": child}).remove()
        with contextlib.suppress(OSError):
            d.rmdir()


def _remove_process_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def _process_dirs(root: CgroupRoot) -> dict[str, Path]:
    """This process's private parent group per hierarchy, created on first use."""
    own = _own_paths()
    dirs: dict[str, Path] = {}
    created: list[Path] = []
    for key, mount in root.mounts.items():
        rel = own.get(key if root.version == 1 else "", "/").lstrip("/")
        parent = mount / rel / f"codeloop-{os.getpid()}"
        if not parent.is_dir():
            parent.mkdir(exist_ok=True)
            created.append(parent)
            if root.version == 2:
                _enable_v2_controllers(parent.parent, parent)
        dirs[key] = parent
    if created:
        atexit.register(_remove_process_dirs, created)
    return dirs


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
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            signalled.update(pids)
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

        A group that stays busy is left for the next cleanup (``_remove_stale``).
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
