"""What a session asks of its jail: limits, network, the writable directory, required layers."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.errors import ConfigError

__all__ = ["LAYERS", "LIMIT_NAMES", "JailPolicy", "check_layer_names", "check_limits"]

# Every layer reported in ``sb.isolation`` (SECURITY.md says what each one promises).
LAYERS: dict[str, str] = {
    "process": "a separate process tree per session, killed as a group",
    "clean_env": "a fresh environment: nothing inherited from the caller",
    "rlimits": "rlimits: address space, CPU seconds, file size, open files, core dumps off",
    "namespaces": "bubblewrap namespaces: own mount, pid, net, ipc and uts; read-only system, private /tmp",
    "uid": "a per-session unprivileged uid (when the caller is root)",
    "process_limit": "a process count limit of the session alone (RLIMIT_NPROC of its own uid, or a pids cgroup)",
    "seccomp": "seccomp filter: no ptrace, mount, namespaces, bpf, io_uring, keyctl, non-UNIX sockets, ...",
    "landlock": "Landlock: writes only to the session directory, reads only what Python needs, no TCP, "
    "no signals out of the sandbox",
    "cgroups": "a memory and pids cgroup of the session",
    "no_network": "no network (a network namespace, and seccomp denying inet sockets)",
}

_MB = 1024 * 1024


def check_layer_names(names: Iterable[str], known: Iterable[str] = LAYERS) -> list[str]:
    """The names as a list; a name that is no layer raises ConfigError listing the valid ones."""
    known_set = set(known)
    wanted = list(names) if not isinstance(names, str) else [names]
    unknown = [n for n in wanted if n not in known_set]
    if unknown:
        raise ConfigError(f"unknown isolation layer(s) {unknown}; known layers: {sorted(known_set)}")
    return wanted


#: Limits a caller may set beyond memory_mb and cpu_seconds (``Sandbox(limits=...)``).
LIMIT_NAMES = ("file_size_mb", "open_files", "processes", "tmp_size_mb")


def check_limits(limits: Mapping[str, int]) -> Mapping[str, int]:
    """The limits unchanged; an unknown name or a non-positive value raises ConfigError."""
    if not isinstance(limits, Mapping):
        raise ConfigError(f"limits must be a mapping of {LIMIT_NAMES} to positive integers, got {limits!r}")
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise ConfigError(f"unknown sandbox limit {name!r}; known limits: {', '.join(LIMIT_NAMES)}")
        _positive(name, value, allow_none=False)
    return limits


def _positive(name: str, value: int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class JailPolicy:
    """Limits of one session; ``None`` for ``memory_mb``/``cpu_seconds`` means no limit."""

    session_dir: Path
    memory_mb: int | None = 1024
    cpu_seconds: int | None = 3600
    file_size_mb: int = 1024
    open_files: int = 1024
    processes: int = 256
    tmp_size_mb: int = 256
    network: bool = False
    #: extra read-only paths (the worker script's directory)
    read_paths: tuple[Path, ...] = field(default_factory=tuple)
    #: the worker's interpreter
    python: str = sys.executable

    def __post_init__(self) -> None:
        _positive("memory_mb", self.memory_mb)
        _positive("cpu_seconds", self.cpu_seconds)
        for name in ("file_size_mb", "open_files", "processes", "tmp_size_mb"):
            _positive(name, getattr(self, name), allow_none=False)
        if not isinstance(self.network, bool):
            raise ConfigError(f"network must be True or False, got {self.network!r}")
        if not Path(self.session_dir).is_absolute():
            raise ConfigError(f"the session directory must be an absolute path, got {self.session_dir}")

    def rlimits(self, nproc: bool) -> dict[str, int]:
        """The rlimits applied in the worker (names as in ``inworker.apply_rlimits``)."""
        limits = {
            "fsize": self.file_size_mb * _MB,
            "nofile": self.open_files,
            "core": 0,
            "memlock": 64 * 1024,
            "msgqueue": 0,
        }
        if self.memory_mb is not None:
            limits["as"] = self.memory_mb * _MB
        if self.cpu_seconds is not None:
            limits["cpu"] = self.cpu_seconds
        if nproc:
            limits["nproc"] = self.processes
        return limits

    def cgroup_memory_bytes(self) -> int | None:
        """Memory of the whole session: the worker's budget plus its in-memory /tmp."""
        return None if self.memory_mb is None else (self.memory_mb + self.tmp_size_mb) * _MB
