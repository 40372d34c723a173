"""The one registry of isolation layers (a leaf: stdlib only).

Every name that appears in ``sb.isolation``, ``require=``, ``strict=True`` and SECURITY.md's layer
table is declared here once, with what it enforces and where it is decided and applied:

* ``probe``: the ``HostSupport`` field (``jail/probe.py``) that says whether this host can have it;
* ``plan``: the key of the in-worker plan (``jail/jailer.py`` ``WorkerJail._plan``) that carries it;
* ``in_worker``: the step of ``jail/inworker.py`` ``apply_plan`` that applies it inside the worker
  (None: applied on the host, by bubblewrap or the kernel's cgroups).

Adding a layer: a ``Layer`` here, its decision in ``WorkerJail._prepare`` (and its probe field), its
plan key and in-worker step if it runs in the worker, a row in SECURITY.md, and its test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LAYERS", "NAMES", "PLAIN", "Layer", "describe", "strict_layers"]


@dataclass(frozen=True)
class Layer:
    name: str
    enforces: str
    #: required by ``Sandbox(strict=True)`` (``no_network`` too unless ``network=True``)
    strict: bool = False
    #: on in the plain launch, without any jail (``jail=False``)
    plain: bool = False
    probe: str | None = None
    plan: str | None = None
    in_worker: str | None = None


LAYERS: tuple[Layer, ...] = (
    Layer("process", "a separate process tree per session, killed as a group", strict=True, plain=True),
    Layer("clean_env", "a fresh environment: nothing inherited from the caller", strict=True, plain=True),
    Layer(
        "rlimits", "rlimits: address space, CPU seconds, file size, open files, core dumps off",
        strict=True, plan="rlimits", in_worker="apply_rlimits",
    ),
    Layer(
        "namespaces", "bubblewrap namespaces: own mount, pid, net, ipc and uts; read-only system, private /tmp",
        strict=True, probe="bwrap_mode",
    ),
    Layer(
        "uid", "a per-session unprivileged uid (when the caller is root)",
        probe="can_switch_uid", plan="uid", in_worker="drop_privileges",
    ),
    Layer(
        "process_limit",
        "a process count limit of the session alone (RLIMIT_NPROC of its own uid, or a pids cgroup)",
        plan="rlimits", in_worker="apply_rlimits",
    ),
    Layer(
        "seccomp", "seccomp filter: no ptrace, mount, namespaces, bpf, io_uring, keyctl, non-UNIX sockets, ...",
        strict=True, probe="seccomp", plan="seccomp_fd", in_worker="load_seccomp_bpf",
    ),
    Layer(
        "landlock",
        "Landlock: writes only to the session directory, reads only what Python needs, no TCP, "
        "no signals out of the sandbox",
        strict=True, probe="landlock_abi", plan="landlock", in_worker="landlock_restrict",
    ),
    Layer("cgroups", "a memory and pids cgroup of the session", probe="cgroups"),
    Layer("no_network", "no network (a network namespace, and seccomp denying inet sockets)"),
)  # fmt: skip

NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS)
#: the layers every plain (unjailed) launch has
PLAIN: tuple[str, ...] = tuple(layer.name for layer in LAYERS if layer.plain)


def strict_layers(network: bool) -> tuple[str, ...]:
    """What ``strict=True`` requires: the strict layers, and ``no_network`` unless the network is on."""
    names = tuple(layer.name for layer in LAYERS if layer.strict)
    return names if network else (*names, "no_network")


def describe(names: Iterable[str] = NAMES) -> dict[str, str]:
    """name -> what the layer enforces."""
    wanted = set(names)
    return {layer.name: layer.enforces for layer in LAYERS if layer.name in wanted}
