"""What a session asks of its jail: limits, network, the writable directory, required layers."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.errors import ConfigError
from codeloop.sandbox.config import LIMIT_NAMES, check_layer_names, check_limits, positive

__all__ = ["LIMIT_NAMES", "JailPolicy", "check_layer_names", "check_limits"]

_MB = 1024 * 1024


def _positive(name: str, value: int | None, allow_none: bool = True) -> None:
    positive(name, value, integer=True, allow_none=allow_none)


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

    def rlimits(self) -> dict[str, int]:
        """The rlimits applied in the worker (names as in ``inworker.apply_rlimits``); the
        ``process_limit`` layer adds ``nproc`` where it counts the session alone."""
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
        return limits

    def cgroup_memory_bytes(self) -> int | None:
        """Memory of the whole session: the worker's budget plus its in-memory /tmp."""
        return None if self.memory_mb is None else (self.memory_mb + self.tmp_size_mb) * _MB
