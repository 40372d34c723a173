"""How a sandbox worker process is started: the one seam that isolation layers plug into.

``build_launch(spec)`` turns a :class:`LaunchSpec` (what the session wants) into a :class:`Launch`
(exactly how to start the process). The session starts workers through this function only, so a
jail (bwrap, rlimits, Landlock, seccomp) changes ``argv``/``env``/``preexec_fn`` here and nothing else.

File descriptors inside the worker, fixed so a wrapper such as bwrap passes them through unchanged
(it must not close or renumber them; bwrap keeps inherited fds open by default):

====  ===========================================================
fd    meaning
====  ===========================================================
0     ``/dev/null`` (stdin is closed to user code)
1     stdout pipe to the host (user output, C-level writes included)
2     stderr pipe to the host
3     ``REQUEST_FD``: framed requests, host -> worker
4     ``REPLY_FD``: framed replies, worker -> host
====  ===========================================================

The spawner (``spawn.py``) places the host's pipe ends at these numbers; ``Launch.pass_fds`` names the
child fd numbers that must survive into the worker. Every other descriptor is close-on-exec in the
host, and the worker closes any stray descriptor >= 5 at start. Processes start in a new session
(``setsid``), so the worker's pid is also its process group id and a stop signals the whole group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # jail: the isolation layers (codeloop.sandbox.jail)
    from codeloop.sandbox.jail.jailer import WorkerJail

__all__ = [
    "REPLY_FD",
    "REQUEST_FD",
    "WORKER_SCRIPT",
    "Launch",
    "LaunchSpec",
    "build_launch",
    "clean_environment",
]

REQUEST_FD = 3
REPLY_FD = 4

#: The worker is one stdlib-only file; a jail needs only this file and the interpreter.
WORKER_SCRIPT = Path(__file__).with_name("worker.py")

#: Isolation layers in the order of SECURITY.md; a jail flips the ones it applies.
LAYERS = ("process", "rlimits", "namespaces", "landlock", "seccomp", "clean_env", "no_network")


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
    jail: WorkerJail | None = None


def clean_environment(spec: LaunchSpec) -> dict[str, str]:
    """A fresh environment: nothing inherited from the host, so no secrets leak into user code."""
    session = str(spec.session_dir)
    bin_dir = os.path.dirname(spec.python)
    env = {
        "PATH": os.pathsep.join([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": session,
        "TMPDIR": session,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
    }
    env.update(spec.env)
    return env


def build_launch(spec: LaunchSpec) -> Launch:
    """The launch of one worker: the plain launch below wrapped in every jail layer the host allows.

    Raises SandboxUnavailable when a layer named in ``spec.require`` (every layer, with
    ``spec.strict``; all but ``no_network`` when the network is on) cannot be applied here.
    """
    # jail: isolation layers (codeloop.sandbox.jail); imported here, it imports this module
    from codeloop.sandbox.jail.launch import jail_launch, require_layers, required_layers

    plain = _plain_launch(spec)
    if not spec.jail:
        require_layers(plain.isolation, plain.notes, required_layers(spec, plain.isolation))
        return plain
    return jail_launch(spec, plain)


def _plain_launch(spec: LaunchSpec) -> Launch:
    """The plain launch: a separate process group and a clean environment, no jail layers."""
    argv = [spec.python, "-I", "-B", str(spec.worker), str(spec.session_dir)]
    isolation = dict.fromkeys(LAYERS, False)
    isolation["process"] = True
    isolation["clean_env"] = True
    notes = [
        "rlimits: not applied (no jail layer installed)"
        + (f"; memory_mb={spec.memory_mb} is not enforced" if spec.memory_mb else ""),
        "namespaces: not applied (no jail layer installed)",
        "landlock: not applied (no jail layer installed); the worker can write outside its directory",
        "seccomp: not applied (no jail layer installed)",
    ]
    if not spec.network:
        notes.append("no_network: network=False was asked for but nothing blocks the network yet")
    return Launch(
        argv=argv,
        env=clean_environment(spec),
        pass_fds=(REQUEST_FD, REPLY_FD),
        preexec_fn=None,
        cwd=str(spec.session_dir),
        isolation=isolation,
        notes=notes,
    )
