"""The one registry of isolation layers: each layer is one class here, from probe to in-worker step.

Every name in ``sb.isolation``, ``require=``, ``strict=True`` and SECURITY.md's layer table is a
:class:`Layer` in this registry, kept in the order the jail decides them (a layer reads the
decisions of the layers before it: ``uid`` those of ``namespaces``, ``process_limit`` those of
``uid`` and ``cgroups``, ``no_network`` those of ``namespaces`` and ``seccomp``). A layer says:

* ``name``, ``enforces``; ``strict``: required by ``strict=True``; ``plain``: on in every launch,
  jail or not (the launcher provides it, the jail does not decide it);
* ``probe()``: what this host offers for it and why not (once per process; kept in
  :class:`HostSupport` under its name);
* ``decide(jail)``: whether it is on for this worker, from the host, the session's policy and the
  layers decided before it; ``jail.off(name, reason)`` records why not. It may take host resources
  into the :class:`JailState` (the session uid, the cgroup) and register their release;
* ``plan(jail)``: its part of the in-worker plan, ``{step: kwargs}``. ``step`` names a stdlib-only
  function of ``jail/inworker.py``, or of the layer's own ``worker_file`` (the jail then binds that
  file's directory read-only), which the worker calls with ``kwargs`` before any user code. Steps
  run in the order they first appear in the registry (rlimits, drop privileges or capabilities,
  seccomp, Landlock); a layer naming a step already planned adds to its arguments
  (``process_limit`` adds ``nproc`` to the rlimits).

``jail/jailer.py`` only loops over the registry, and ``jail/inworker.py`` runs whatever steps the
plan names. Adding a layer touches: one ``Layer`` subclass in this module (or one ``register()``
call from anywhere, with its in-worker code, if none of inworker.py's steps fits, in its own
stdlib-only ``worker_file``), its row in SECURITY.md, and its test.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codeloop.errors import SandboxError
from codeloop.sandbox.hostfs import chown_fresh_tree
from codeloop.sandbox.jail import bwrap, cgroups, inworker, paths, seccomp_filter, uids
from codeloop.sandbox.jail.bwrap import BwrapMode
from codeloop.sandbox.jail.cgroups import SessionCgroup
from codeloop.sandbox.jail.uids import UidLease

__all__ = [
    "INWORKER_FILE",
    "HostSupport",
    "JailState",
    "Layer",
    "Plan",
    "describe",
    "names",
    "plain_names",
    "probe_host",
    "register",
    "registered",
    "strict_layers",
    "unregister",
]

#: Source of the in-worker half, loaded by path by the worker (the jail binds its directory).
INWORKER_FILE = Path(inworker.__file__)

#: an in-worker plan: step (a function name) -> its keyword arguments
Plan = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class HostSupport:
    """What this host offers, per layer (its probe's answer), and why a missing one is missing."""

    found: Mapping[str, Any]
    reasons: Mapping[str, str] = field(default_factory=dict)

    def without(self, name: str, reason: str) -> HostSupport:
        """This host with layer ``name`` missing for ``reason`` (to simulate a poorer host)."""
        return HostSupport({**self.found, name: None}, {**self.reasons, name: reason})


class Policy(Protocol):
    """What the layers read of a session's ``jail/policy.py`` ``JailPolicy``."""

    @property
    def session_dir(self) -> Path: ...
    @property
    def python(self) -> str: ...
    @property
    def read_paths(self) -> tuple[Path, ...]: ...
    @property
    def network(self) -> bool: ...
    @property
    def processes(self) -> int: ...
    def rlimits(self) -> dict[str, int]: ...
    def cgroup_memory_bytes(self) -> int | None: ...


@dataclass(eq=False)
class JailState:
    """One worker's jail as the layers decide it: what is on, why not, and what they hold."""

    host: HostSupport
    policy: Policy
    #: a restart's session uid: the session keeps it (and its directory is never handed over again)
    given_lease: UidLease | None = None
    isolation: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uid: UidLease | None = None
    cgroup: SessionCgroup | None = None
    #: the worker's private /tmp when there is no mount namespace (made by the jail)
    tmpdir: str | None = None
    #: why this jail must not start, whatever the caller requires
    refusal: str | None = None
    #: what the worker may read (bubblewrap binds, Landlock rules); set by the jail before planning
    read: list[str] = field(default_factory=list)
    #: descriptors handed to the worker (the host closes its copies once it started) ...
    fds: list[int] = field(default_factory=list)
    #: ... of which the in-worker steps read these (the worker closes every other one at once)
    keep_fds: list[int] = field(default_factory=list)
    #: the seccomp program for bubblewrap to load (set when bubblewrap runs)
    bwrap_seccomp_fd: int | None = None
    #: releases of what layers hold beyond the uid and the cgroup, run at close (last first)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def on(self, name: str) -> bool:
        return self.isolation.get(name, False)

    def off(self, name: str, reason: str) -> bool:
        """Note why layer ``name`` is off; returns False, its decision."""
        self.notes.append(f"{name}: off: {reason}")
        return False

    def hand_over(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    @property
    def bwrap(self) -> bwrap.Bwrap | None:
        """The bubblewrap that runs the worker, None without namespaces."""
        found = self.host.found.get("namespaces")
        return found if self.on("namespaces") and isinstance(found, bwrap.Bwrap) else None


class Layer:
    """One isolation layer (see the module docstring); subclasses set the class attributes."""

    name: str = ""
    enforces: str = ""
    strict: bool = False
    plain: bool = False
    #: a stdlib-only file holding this layer's in-worker steps; None: ``jail/inworker.py``
    worker_file: Path | None = None

    def probe(self) -> tuple[Any, str]:
        """What this host offers for the layer (falsy: nothing) and, if nothing, why."""
        return True, ""

    def decide(self, jail: JailState) -> bool:
        return False

    def plan(self, jail: JailState) -> Plan:
        return {}


# --- the layers, in the order they are decided ------------------------------------------------


class Process(Layer):
    name, strict, plain = "process", True, True
    enforces = "a separate process tree per session, killed as a group"


class CleanEnv(Layer):
    name, strict, plain = "clean_env", True, True
    enforces = "a fresh environment: nothing inherited from the caller"


class Rlimits(Layer):
    name, strict = "rlimits", True
    enforces = "rlimits: address space, CPU seconds, file size, open files, core dumps off"

    def decide(self, jail: JailState) -> bool:
        return True

    def plan(self, jail: JailState) -> Plan:
        return {"apply_rlimits": {"limits": jail.policy.rlimits()}}


class Namespaces(Layer):
    name, strict = "namespaces", True
    enforces = "bubblewrap namespaces: own mount, pid, net, ipc and uts; read-only system, private /tmp"

    def probe(self) -> tuple[Any, str]:
        return bwrap.probe_bwrap()

    def decide(self, jail: JailState) -> bool:
        return jail.host.found.get(self.name) is not None or jail.off(
            self.name, jail.host.reasons.get(self.name, "bubblewrap unavailable")
        )


class Uid(Layer):
    name = "uid"
    enforces = "a per-session unprivileged uid (when the caller is root)"

    def probe(self) -> tuple[Any, str]:
        return uids.can_switch_uid()

    def decide(self, jail: JailState) -> bool:
        host, namespaces = jail.host, jail.on("namespaces")
        can = bool(host.found.get(self.name))
        switch = can and jail.bwrap is not None and jail.bwrap.mode == BwrapMode.PRIVILEGED
        if can and not namespaces:
            # Without a mount namespace the worker sees host paths: its uid must reach them.
            blocked = _unreachable(jail.policy)
            switch = not blocked
            if blocked:
                why = "is not reachable by an unprivileged uid without a mount namespace"
                jail.off(self.name, f"{blocked[0]} {why}")
        elif not can:
            jail.off(self.name, host.reasons.get(self.name, "cannot switch uid"))
        elif not switch:
            jail.off(self.name, "bubblewrap runs in a user namespace: only the caller's uid is mapped")
        if switch:
            _lease_uid(jail)
        if not switch and os.geteuid() == 0 and not namespaces:
            # Root without a mount namespace and without a uid of its own: even with every
            # capability dropped, uid 0 owns the host's files (chmod, utime, xattrs), its SysV IPC
            # and its processes' limits. Refuse rather than run there.
            uid_note = next((n for n in jail.notes if n.startswith("uid:")), "uid: off")
            jail.refusal = (
                "refusing to start: no mount namespace (bubblewrap unavailable: "
                f"{host.reasons.get('namespaces', 'unknown reason')}) and no session uid ({uid_note}), "
                "so the worker would run as root on the host's files. Fix: make bubblewrap work "
                "(allow namespaces), or let an unprivileged uid reach the interpreter and the "
                "sandbox root (e.g. python='/usr/bin/python3' and a root= directory with mode 0755), "
                "or pass jail=False to run without any jail, knowingly"
            )
        return switch

    def plan(self, jail: JailState) -> Plan:
        if jail.uid is not None:
            return {"drop_privileges": {"uid": jail.uid.uid, "gid": jail.uid.gid}}
        return {"drop_capabilities": {}}  # e.g. root in a container: stay uid 0 but with no capability


def _unreachable(policy: Policy) -> list[str]:
    """What a session uid would need but cannot reach on the host's own paths."""
    needed = [(os.path.realpath(policy.python), os.X_OK), (str(INWORKER_FILE), os.R_OK)]
    needed += [(str(p), os.R_OK) for p in policy.read_paths]
    needed += [(str(layer.worker_file), os.R_OK) for layer in registered() if layer.worker_file is not None]
    needed.append((os.path.dirname(str(policy.session_dir)), os.X_OK))
    return [p for p, need in needed if not paths.reachable_by_others(p, need)]


def _lease_uid(jail: JailState) -> None:
    given = jail.given_lease
    if given is not None and given.held:
        # A restart: the session keeps its uid, which already owns the directory. Never hand
        # the directory over again: the session filled it (a hard link to a host file in it
        # would turn a chown of the tree into a chown of that file).
        jail.uid = given.retain()
        return
    session = str(jail.policy.session_dir)
    lease = jail.uid = UidLease.acquire()  # held by the jail at once: close() frees it on any failure
    uids.check_private_dir(session)
    try:
        chown_fresh_tree(session, lease.uid, lease.gid)
    except OSError as e:
        raise SandboxError(f"cannot hand the session directory to uid {lease.uid}: {e}") from e


class Cgroups(Layer):
    name = "cgroups"
    enforces = "a memory and pids cgroup of the session"

    def probe(self) -> tuple[Any, str]:
        return cgroups.find_root()

    def decide(self, jail: JailState) -> bool:
        root = jail.host.found.get(self.name)
        if root is None:
            return jail.off(self.name, jail.host.reasons.get(self.name, "no cgroups"))
        try:
            jail.cgroup = SessionCgroup.create(root, jail.policy.cgroup_memory_bytes(), jail.policy.processes)
        except SandboxError as e:
            return jail.off(self.name, str(e))
        return True


class ProcessLimit(Layer):
    name = "process_limit"
    enforces = "a process count limit of the session alone (RLIMIT_NPROC of its own uid, or a pids cgroup)"

    @staticmethod
    def _nproc(jail: JailState) -> bool:
        # RLIMIT_NPROC counts the session alone under its own uid, or in its own user namespace
        # (Linux >= 5.14 counts processes per user namespace); else it would count the caller's.
        userns = jail.bwrap is not None and jail.bwrap.mode == BwrapMode.USERNS
        return jail.uid is not None or (userns and _kernel_at_least(5, 14))

    def decide(self, jail: JailState) -> bool:
        why = "no session uid, user namespace or pids cgroup: a fork bomb is not contained"
        return self._nproc(jail) or jail.cgroup is not None or jail.off(self.name, why)

    def plan(self, jail: JailState) -> Plan:
        return {"apply_rlimits": {"limits": {"nproc": jail.policy.processes}}} if self._nproc(jail) else {}


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        found = tuple(int(part) for part in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return found >= (major, minor)


class Seccomp(Layer):
    name, strict = "seccomp", True
    enforces = "seccomp filter: no ptrace, mount, namespaces, bpf, io_uring, keyctl, non-UNIX sockets, ..."

    def probe(self) -> tuple[Any, str]:
        return seccomp_filter.seccomp_available()

    def decide(self, jail: JailState) -> bool:
        return bool(jail.host.found.get(self.name)) or jail.off(
            self.name, jail.host.reasons.get(self.name, "no seccomp")
        )

    def plan(self, jail: JailState) -> Plan:
        if not jail.on(self.name):
            return {}
        namespaces = jail.bwrap is not None
        # Nothing else finds escaped processes: keep them in the worker's process group.
        keep_group = not (namespaces or jail.uid is not None or jail.cgroup is not None)
        program = seccomp_filter.filter_fd(jail.policy.network, keep_group, host_view=not namespaces)
        fd = jail.hand_over(program)
        if namespaces:
            jail.bwrap_seccomp_fd = fd  # bubblewrap loads it, before the worker's interpreter starts
            return {}
        jail.keep_fds.append(fd)
        return {"load_seccomp_fd": {"fd": fd}}


class Landlock(Layer):
    name, strict = "landlock", True
    enforces = (
        "Landlock: writes only to the session directory, reads only what Python needs, no TCP, "
        "no signals out of the sandbox"
    )

    def probe(self) -> tuple[Any, str]:
        abi = inworker.landlock_abi()
        return abi, "" if abi >= 1 else "this kernel has no Landlock (or it is disabled)"

    def decide(self, jail: JailState) -> bool:
        abi = jail.host.found.get(self.name) or 0
        if abi < 1:
            return jail.off(self.name, jail.host.reasons.get(self.name, "no Landlock"))
        if abi < 4 and not jail.policy.network:
            jail.notes.append(f"landlock: ABI {abi} cannot deny TCP (needs ABI 4)")
        elif abi < 6:
            jail.notes.append(f"landlock: ABI {abi} cannot scope signals (needs ABI 6)")
        return True

    def plan(self, jail: JailState) -> Plan:
        if not jail.on(self.name):
            return {}
        write, read = [str(jail.policy.session_dir)], list(jail.read)
        if jail.bwrap is not None:
            write += ["/tmp", "/dev/shm"]
            read.append("/proc")
        elif jail.tmpdir is not None:
            write.append(jail.tmpdir)
        devices, tcp = list(paths.DEVICES), jail.policy.network
        return {"landlock_restrict": {"read": read, "write": write, "devices": devices, "allow_tcp": tcp}}


class NoNetwork(Layer):
    name = "no_network"
    enforces = "no network (a network namespace, and seccomp denying inet sockets)"

    def decide(self, jail: JailState) -> bool:
        if jail.policy.network:
            return jail.off(self.name, "network=True was asked for (inet sockets allowed)")
        return (
            jail.on("namespaces")
            or jail.on("seccomp")
            or jail.off(self.name, "neither a network namespace nor seccomp is available")
        )


# --- the registry -----------------------------------------------------------------------------

_registry: tuple[Layer, ...] = (
    Process(), CleanEnv(), Rlimits(), Namespaces(), Uid(), Cgroups(), ProcessLimit(), Seccomp(), Landlock(),
    NoNetwork(),
)  # fmt: skip
_registry_lock = threading.Lock()


def registered() -> tuple[Layer, ...]:
    """Every layer, in the order the jail decides them."""
    return _registry


def register(layer: Layer, *, after: str | None = None) -> None:
    """Add ``layer`` (decided after the layer named ``after``, else last)."""
    global _registry
    with _registry_lock:
        known = names()
        if not layer.name or layer.name in known:
            raise ValueError(f"a layer needs a new name, not {layer.name!r}")
        at = len(known) if after is None else known.index(after) + 1
        _registry = (*_registry[:at], layer, *_registry[at:])


def unregister(name: str) -> None:
    global _registry
    with _registry_lock:
        _registry = tuple(layer for layer in _registry if layer.name != name)


def names() -> tuple[str, ...]:
    return tuple(layer.name for layer in _registry)


def plain_names() -> tuple[str, ...]:
    """The layers every plain (unjailed) launch has."""
    return tuple(layer.name for layer in _registry if layer.plain)


def strict_layers(network: bool) -> tuple[str, ...]:
    """What ``strict=True`` requires: the strict layers, and ``no_network`` unless the network is on."""
    found = tuple(layer.name for layer in _registry if layer.strict)
    return found if network else (*found, "no_network")


def describe(wanted: Iterable[str] | None = None) -> dict[str, str]:
    """name -> what the layer enforces."""
    chosen = set(names() if wanted is None else wanted)
    return {layer.name: layer.enforces for layer in _registry if layer.name in chosen}


def probe_host() -> HostSupport:
    """Every layer's probe (each runs once per process; later calls reuse its answer)."""
    answers = {layer.name: _probe(layer) for layer in _registry}
    return HostSupport(
        {name: found for name, (found, _why) in answers.items()},
        {name: why for name, (found, why) in answers.items() if why and not found},
    )


@functools.cache
def _probe(layer: Layer) -> tuple[Any, str]:
    return layer.probe()
