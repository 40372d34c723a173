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
from typing import TYPE_CHECKING

# The types live in a leaf module (jail/launch.py uses them without importing this one); they are
# re-exported here, where callers have always found them.
from codeloop.sandbox.jail.launch import jail_launch, require_layers, required_layers
from codeloop.sandbox.launch_types import REPLY_FD, REQUEST_FD, WORKER_SCRIPT, Launch, LaunchSpec
from codeloop.sandbox.layers import names, plain_names

if TYPE_CHECKING:
    from codeloop.sandbox.jail.uids import UidLease

__all__ = [
    "REPLY_FD",
    "REQUEST_FD",
    "WORKER_SCRIPT",
    "Launch",
    "LaunchSpec",
    "build_launch",
    "clean_environment",
]

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


def build_launch(spec: LaunchSpec, uid_lease: UidLease | None = None) -> Launch:
    """The launch of one worker: the plain launch below wrapped in every jail layer the host allows.

    Raises SandboxUnavailable when a layer named in ``spec.require`` (every layer, with
    ``spec.strict``; all but ``no_network`` when the network is on) cannot be applied here.
    ``uid_lease``: the session uid the session's earlier workers ran as (kept across restarts).
    """
    plain = _plain_launch(spec)
    if not spec.jail:
        require_layers(plain.isolation, plain.notes, required_layers(spec, plain.isolation))
        return plain
    return jail_launch(spec, plain, uid_lease)


def _plain_launch(spec: LaunchSpec) -> Launch:
    """The plain launch: a separate process group and a clean environment, no jail layers."""
    argv = [spec.python, "-I", "-B", str(spec.worker), str(spec.session_dir)]
    plain = plain_names()
    isolation = {name: name in plain for name in names()}
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
