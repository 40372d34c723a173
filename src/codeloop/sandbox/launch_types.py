"""The types of a worker launch (a leaf module: stdlib only, no codeloop imports at run time).

``LaunchSpec`` is what a session asks for, ``Launch`` exactly how to start one worker; the fixed
descriptor numbers and the worker script are here too. ``launcher.build_launch`` turns the one into
the other; the jail (``jail/launch.py``) wraps a ``Launch`` without importing ``launcher``. See
``launcher.py`` for the descriptor table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from codeloop.sandbox.jail.uids import UidLease

__all__ = ["REPLY_FD", "REQUEST_FD", "WORKER_SCRIPT", "JailHandle", "Launch", "LaunchSpec"]


class JailHandle(Protocol):
    """The host side of one worker's jail, as the spawner and the session use it."""

    @property
    def uid_lease(self) -> UidLease | None: ...

    def started(self) -> None: ...

    def close(self) -> None: ...

    def oom_killed(self) -> bool | None: ...


REQUEST_FD = 3
REPLY_FD = 4

#: The worker is one stdlib-only file; a jail needs only this file and the interpreter.
WORKER_SCRIPT = Path(__file__).with_name("worker.py")


@dataclass(frozen=True)
class LaunchSpec:
    """What a session asks for: interpreter, worker, working directory, limits and extra env."""

    python: str
    worker: Path
    session_dir: Path
    memory_mb: int | None = None
    cpu_seconds: int | None = None
    network: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    #: refuse to start unless every layer is active (checked by the session, not here)
    strict: bool = False
    #: jail: layers that must be active, else build_launch raises SandboxUnavailable
    require: tuple[str, ...] = ()
    #: jail: False starts the plain worker with no jail layers (benchmarks, debugging)
    jail: bool = True
    #: jail: limits beyond memory and CPU: file_size_mb, open_files, processes, tmp_size_mb
    limits: Mapping[str, int] = field(default_factory=dict)

    def profile(self) -> tuple[object, ...]:
        """Everything but the session directory: workers with equal profiles are interchangeable."""
        return (
            self.python,
            str(self.worker),
            self.memory_mb,
            self.cpu_seconds,
            self.network,
            tuple(sorted(self.env.items())),
            self.strict,
            self.require,
            self.jail,
            tuple(sorted(self.limits.items())),
        )


@dataclass(frozen=True)
class Launch:
    """How to start one worker: argv, a complete environment, and what is isolated and why not."""

    argv: list[str]
    env: dict[str, str]
    #: fd numbers in the child that must stay open (the protocol pipes; a jail may add its own)
    pass_fds: tuple[int, ...]
    #: runs in the child between fork and exec; None keeps the fast posix_spawn path
    preexec_fn: Callable[[], None] | None
    cwd: str
    isolation: dict[str, bool]
    #: one line per inactive layer saying why it is off
    notes: list[str]
    #: jail: the host-side jail of this worker; ``jail.close()`` once the worker is gone kills what
    #: it left (cgroup, session uid) and frees its resources; ``jail.oom_killed()`` tells OOM kills
    jail: JailHandle | None = None


