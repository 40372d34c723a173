"""Put one worker command in a jail: choose the layers this host allows, hold their resources.

A :class:`WorkerJail` is made per worker process: it leases a session uid, creates the cgroup,
compiles the seccomp filter into a descriptor and writes the in-worker plan. ``close()`` after
the worker is gone kills anything left (cgroup, uid sweep) and frees the lot.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import stat
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from codeloop.errors import SandboxError
from codeloop.sandbox.hostfs import SESSION_NAME, chown_fresh_tree, remove_tree
from codeloop.sandbox.jail import bwrap, paths, seccomp_filter
from codeloop.sandbox.jail.cgroups import SessionCgroup
from codeloop.sandbox.jail.inworker import ENV_VAR
from codeloop.sandbox.jail.policy import JailPolicy
from codeloop.sandbox.jail.probe import BwrapMode, HostSupport, probe_host
from codeloop.sandbox.jail.uids import UID_BASE, UID_COUNT, UidLease

__all__ = ["JailedCommand", "WorkerJail"]

#: Source of the in-worker half, loaded by path by the worker (the jail binds its directory).
INWORKER_FILE = Path(__file__).with_name("inworker.py")

_SYSTEM_DIRS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc", "/root",
     "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/work"}
)  # fmt: skip
_live: weakref.WeakSet[WorkerJail] = weakref.WeakSet()
_live_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Last resort: a session that was never closed still loses its processes at exit."""
    with _live_lock:
        jails = list(_live)
    for jail in jails:
        if jail.owner_pid == os.getpid():  # a forked child must not kill its parent's sessions
            jail.close()


@dataclass(frozen=True)
class JailedCommand:
    """A command ready to spawn: extra env, fds to keep, and what runs between fork and exec."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    preexec_fn: Callable[[], None] | None


class WorkerJail:
    """The host side of one worker's jail; see the module docstring."""

    def __init__(self, policy: JailPolicy, host: HostSupport | None = None, uid_lease: UidLease | None = None) -> None:
        self.policy = policy
        self._given_lease = uid_lease
        self.host = host or probe_host()
        self.isolation: dict[str, bool] = {}
        self.notes: list[str] = []
        self._uid: UidLease | None = None
        self._cgroup: SessionCgroup | None = None
        self._tmpdir: str | None = None
        self._parent_fds: list[int] = []
        self._closed = False
        self.owner_pid = os.getpid()
        self._oom: bool | None = None  # recorded at close, when the cgroup goes away
        #: why this jail must not start, whatever the caller requires (jail_launch raises it after
        #: ``require``'s own refusal, which names the missing layer the caller asked for)
        self.refusal: str | None = None
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise
        with _live_lock:
            _live.add(self)

    # --- choosing layers ------------------------------------------------------------------

    def _off(self, layer: str, reason: str) -> None:
        self.isolation[layer] = False
        self.notes.append(f"{layer}: off: {reason}")

    def _prepare(self) -> None:
        host, policy = self.host, self.policy
        session = str(policy.session_dir)
        self.namespaces = host.bwrap is not None and host.bwrap_mode is not None
        self.isolation["namespaces"] = self.namespaces
        if not self.namespaces:
            self._off("namespaces", host.reasons.get("namespaces", "bubblewrap unavailable"))

        switch = host.can_switch_uid and (self.namespaces and host.bwrap_mode == BwrapMode.PRIVILEGED)
        if host.can_switch_uid and not self.namespaces:
            # Without a mount namespace the worker sees host paths: its uid must reach them.
            needed = [(os.path.realpath(policy.python), os.X_OK), (str(INWORKER_FILE), os.R_OK)]
            needed += [(str(p), os.R_OK) for p in policy.read_paths]
            needed.append((os.path.dirname(session), os.X_OK))
            blocked = [p for p, need in needed if not paths.reachable_by_others(p, need)]
            switch = not blocked
            if blocked:
                self._off(
                    "uid", f"{blocked[0]} is not reachable by an unprivileged uid without a mount namespace"
                )
        elif not host.can_switch_uid:
            self._off("uid", host.reasons.get("uid", "cannot switch uid"))
        elif not switch:
            self._off("uid", "bubblewrap runs in a user namespace: only the caller's uid is mapped")
        if switch and self._given_lease is not None and self._given_lease.held:
            # A restart: the session keeps its uid, which already owns the directory. Never hand
            # the directory over again: the session filled it (a hard link to a host file in it
            # would turn a chown of the tree into a chown of that file).
            self._uid = self._given_lease.retain()
        elif switch:
            self._uid = UidLease.acquire()
            _check_private_dir(session)
            try:
                chown_fresh_tree(session, self._uid.uid, self._uid.gid)
            except OSError as e:
                raise SandboxError(f"cannot hand the session directory to uid {self._uid.uid}: {e}") from e
        self.isolation["uid"] = switch
        if not switch and os.geteuid() == 0 and not self.namespaces:
            # Root without a mount namespace and without a uid of its own: even with every
            # capability dropped, uid 0 owns the host's files (chmod, utime, xattrs), its SysV IPC
            # and its processes' limits. Refuse rather than run there.
            uid_note = next((n for n in self.notes if n.startswith("uid:")), "uid: off")
            self.refusal = (
                "refusing to start: no mount namespace (bubblewrap unavailable: "
                f"{host.reasons.get('namespaces', 'unknown reason')}) and no session uid ({uid_note}), "
                "so the worker would run as root on the host's files. Fix: make bubblewrap work "
                "(allow namespaces), or let an unprivileged uid reach the interpreter and the "
                "sandbox root (e.g. python='/usr/bin/python3' and a root= directory with mode 0755), "
                "or pass jail=False to run without any jail, knowingly"
            )
        self.isolation["rlimits"] = True
        if host.cgroups is not None:
            try:
                self._cgroup = SessionCgroup.create(
                    host.cgroups, policy.cgroup_memory_bytes(), policy.processes
                )
            except SandboxError as e:
                self._off("cgroups", str(e))
        else:
            self._off("cgroups", host.reasons.get("cgroups", "no cgroups"))
        self.isolation["cgroups"] = self._cgroup is not None
        # RLIMIT_NPROC counts the session alone under its own uid, or in its own user namespace
        # (Linux >= 5.14 counts processes per user namespace); else it would count the caller's.
        self._nproc = switch or (
            self.namespaces and host.bwrap_mode == BwrapMode.USERNS and _kernel_at_least(5, 14)
        )
        self.isolation["process_limit"] = self._nproc or self._cgroup is not None
        if not self.isolation["process_limit"]:
            self.notes.append(
                "process_limit: off: no session uid, user namespace or pids cgroup: a fork bomb is not contained"
            )

        self.isolation["seccomp"] = host.seccomp
        if not host.seccomp:
            self._off("seccomp", host.reasons.get("seccomp", "no seccomp"))
        self.isolation["landlock"] = host.landlock_abi >= 1
        if host.landlock_abi < 1:
            self._off("landlock", host.reasons.get("landlock", "no Landlock"))
        elif host.landlock_abi < 4 and not policy.network:
            self.notes.append(f"landlock: ABI {host.landlock_abi} cannot deny TCP (needs ABI 4)")
        elif host.landlock_abi < 6:
            self.notes.append(f"landlock: ABI {host.landlock_abi} cannot scope signals (needs ABI 6)")

        if policy.network:
            self.isolation["no_network"] = False
            self.notes.append("no_network: off: network=True was asked for (inet sockets allowed)")
        else:
            self.isolation["no_network"] = self.namespaces or host.seccomp
            if not self.isolation["no_network"]:
                self.notes.append("no_network: off: neither a network namespace nor seccomp is available")
        if not self.namespaces:
            # A private /tmp of this worker, next to the session directory inside its private
            # holder (which the session cannot rename), else in the system's temp directory.
            holder = policy.session_dir.parent
            inside = policy.session_dir.name == SESSION_NAME and holder.name.startswith("codeloop-")
            self._tmpdir = tempfile.mkdtemp(prefix="tmp-" if inside else "codeloop-tmp-", dir=holder if inside else None)
            if self._uid is not None:
                os.chown(self._tmpdir, self._uid.uid, self._uid.gid, follow_symlinks=False)

    # --- the command ----------------------------------------------------------------------

    def _read_paths(self) -> list[str]:
        """What the worker may read: system paths, this process's and the worker interpreter's own
        prefixes and packages (as the interpreter reports them), the worker's directory, and the
        interpreter file itself (with a venv's ``pyvenv.cfg``). Nothing that exposes a home."""
        python = self.policy.python
        found = paths.system_paths(self.policy.network) + list(paths.python_paths())
        extra = [str(p) for p in self.policy.read_paths] + [str(INWORKER_FILE.parent)]
        extra += [p for p in paths.interpreter_paths(python) if not any(_under(p, f) for f in found)]
        files = [python]  # bound as a file: its directory may be ~/bin
        cfg = os.path.join(os.path.dirname(os.path.dirname(python)), "pyvenv.cfg")
        if os.path.isfile(cfg):
            files.append(cfg)
        extra = [p for p in extra if not paths.exposes_home(p)]
        return found + [p for p in dict.fromkeys(extra + files) if not any(_under(p, f) for f in found)]

    def _plan(self, seccomp_fd: int | None) -> dict[str, object]:
        policy = self.policy
        write = [str(policy.session_dir)]
        read = self._read_paths()
        devices = list(paths.DEVICES)
        if self.namespaces:
            write += ["/tmp", "/dev/shm"]
            read.append("/proc")
        elif self._tmpdir is not None:
            write.append(self._tmpdir)
        plan: dict[str, object] = {
            "umask": 0o077,
            "rlimits": policy.rlimits(nproc=self._nproc),
            "seccomp_fd": seccomp_fd,
        }
        if self._uid is not None:
            plan["uid"], plan["gid"] = self._uid.uid, self._uid.gid
        else:
            plan["drop_caps"] = True  # e.g. root in a container: stay uid 0 but with no capability
        if self.isolation["landlock"]:
            plan["landlock"] = {"read": read, "write": write, "devices": devices, "allow_tcp": policy.network}
        return plan

    def wrap(self, command: Sequence[str]) -> JailedCommand:
        """The jailed form of ``command`` (the worker, which must apply ``CODELOOP_JAIL`` first)."""
        if self._closed:
            raise SandboxError("this jail is closed")
        fd: int | None = None
        if self.isolation["seccomp"]:
            # Nothing else finds escaped processes: keep them in the worker's process group.
            keep_group = not (self.namespaces or self._uid is not None or self._cgroup is not None)
            fd = seccomp_filter.filter_fd(self.policy.network, keep_group, host_view=not self.namespaces)
            self._parent_fds.append(fd)
        pass_fds = () if fd is None else (fd,)
        env: dict[str, str] = {}
        bwrap_path, bwrap_mode = self.host.bwrap, self.host.bwrap_mode
        if self.namespaces and bwrap_path is not None and bwrap_mode is not None:
            argv = bwrap.bwrap_argv(
                bwrap_path,
                bwrap_mode,
                read_only=self._read_paths(),
                session_dir=str(self.policy.session_dir),
                tmp_size_bytes=self.policy.tmp_size_mb * 1024 * 1024,
                network=self.policy.network,
                switch_uid=self._uid is not None,
                seccomp_fd=fd,
                command=command,
            )
            env[ENV_VAR] = json.dumps(self._plan(None))
        else:
            argv = list(command)
            env[ENV_VAR] = json.dumps(self._plan(fd))
            if self._tmpdir is not None:
                env["TMPDIR"] = self._tmpdir
        preexec: Callable[[], None] | None = None
        if self._cgroup is not None:
            fds, preexec = self._cgroup.joiner()
            self._parent_fds += fds
        return JailedCommand(argv, env, pass_fds, preexec)

    def started(self) -> None:
        """The worker is spawned: drop the host's copies of the descriptors handed to it."""
        fds, self._parent_fds = self._parent_fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def uid_lease(self) -> UidLease | None:
        """The session uid this worker runs as, if any."""
        return self._uid

    def oom_killed(self) -> bool | None:
        """Whether the kernel killed a process of the session for memory; None: no cgroup to ask.

        Recorded at close, when the cgroup goes away.
        """
        if self._oom is not None:
            return self._oom
        return None if self._cgroup is None else self._cgroup.oom_killed()

    def close(self) -> None:
        """Kill everything of this session that is left, then free uid, cgroup and temp dir."""
        if self._closed or os.getpid() != self.owner_pid:  # a forked child never frees its parent's jail
            return
        self._closed = True
        self.started()
        emptied = False
        try:
            if self._cgroup is not None:
                self._oom = self._cgroup.oom_killed()
                emptied = self._cgroup.remove()
        finally:
            if self._uid is not None:
                # A session uid cannot leave its cgroup (root owns cgroup.procs): an emptied group
                # means no process of the uid is left, and the sweep (two process spawns) is moot.
                self._uid.release(sweep=not emptied)
            if self._tmpdir is not None:
                with contextlib.suppress(SandboxError):
                    remove_tree(self._tmpdir)
        with _live_lock:
            _live.discard(self)


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        found = tuple(int(part) for part in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return found >= (major, minor)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _check_private_dir(path: str) -> None:
    """Refuse to hand anything but a private session directory to a session uid.

    A session directory is a real directory (not a link), at least two levels below ``/``,
    owned by us (or by an earlier session uid) and not writable by others.
    """
    real = os.path.realpath(path)
    try:
        st = os.lstat(path)
    except OSError as e:
        raise SandboxError(f"session directory {path} is unusable: {e}") from e
    owner_ok = st.st_uid == os.geteuid() or UID_BASE <= st.st_uid < UID_BASE + UID_COUNT
    if (
        real != os.path.abspath(path)
        or real.count("/") < 2
        or real in _SYSTEM_DIRS
        or not stat.S_ISDIR(st.st_mode)
        or not owner_ok
        or st.st_mode & 0o022
    ):
        raise SandboxError(
            f"refusing to give {path} to a session uid: not a private session directory "
            "(a real directory two or more levels deep, owned by us, not writable by others)"
        )
