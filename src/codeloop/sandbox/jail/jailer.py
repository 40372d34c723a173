"""Put one worker command in a jail: let every registered layer decide, hold what they took.

A :class:`WorkerJail` is made per worker process. It asks each layer of the registry
(``sandbox/layers.py``), in order, whether it is on here (a layer may lease the session uid,
create the cgroup, ...), then builds the command: bubblewrap's argv when namespaces are on, and
the in-worker plan, the layers' steps in registry order. ``close()`` after the worker is gone
kills anything left (cgroup, uid sweep) and frees the lot. Nothing here is specific to a layer
but how bubblewrap, the private /tmp and the cgroup join wrap the command.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.errors import SandboxError
from codeloop.sandbox.hostfs import SESSION_NAME, TMP_PREFIX, new_private_tmp, remove_private_tmp, remove_tree
from codeloop.sandbox.jail import bwrap, paths
from codeloop.sandbox.jail.inworker import ENV_VAR
from codeloop.sandbox.jail.policy import JailPolicy
from codeloop.sandbox.jail.uids import UidLease
from codeloop.sandbox.layers import INWORKER_FILE, HostSupport, JailState, probe_host, registered
from codeloop.sandbox.leftovers import sweep_soon

__all__ = ["INWORKER_FILE", "JailedCommand", "WorkerJail"]

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
        self.host = host or probe_host()
        #: what the layers decided and hold
        self.state = JailState(self.host, policy, given_lease=uid_lease)
        self._parent_fds: list[int] = []
        self._closed = False
        self.owner_pid = os.getpid()
        self._oom: bool | None = None  # recorded at close, when the cgroup goes away
        self._tmp_holder = False  # whether the private /tmp has a holder of its own (new_private_tmp)
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise
        with _live_lock:
            _live.add(self)

    @property
    def isolation(self) -> dict[str, bool]:
        """The layers this jail decided (the plain ones, which the launcher provides, aside)."""
        return self.state.isolation

    @property
    def notes(self) -> list[str]:
        return self.state.notes

    @property
    def refusal(self) -> str | None:
        """Why this jail must not start, whatever the caller requires (jail_launch raises it after
        ``require``'s own refusal, which names the missing layer the caller asked for)."""
        return self.state.refusal

    @property
    def namespaces(self) -> bool:
        return self.state.bwrap is not None

    # --- choosing layers ------------------------------------------------------------------

    def _prepare(self) -> None:
        state = self.state
        for layer in registered():
            if not layer.plain:
                state.isolation[layer.name] = bool(layer.decide(state))
        if not self.namespaces:
            # A private /tmp of this worker, next to the session directory inside its private
            # holder (which the session cannot rename, removed with the session), else in a
            # holder of its own in the system's temp directory, locked by this process like a
            # session's, so that a sweep can prove it stale once this process is killed.
            holder = self.policy.session_dir.parent
            if self.policy.session_dir.name == SESSION_NAME and holder.name.startswith("codeloop-"):
                state.tmpdir = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=holder)
            else:
                state.tmpdir = str(new_private_tmp())
                self._tmp_holder = True
                sweep_soon(None)  # the holders of killed processes there (rate-limited, background)
            if state.uid is not None:
                os.chown(state.tmpdir, state.uid.uid, state.uid.gid, follow_symlinks=False)

    # --- the command ----------------------------------------------------------------------

    def _read_paths(self) -> list[str]:
        """What the worker may read: system paths, this process's and the worker interpreter's own
        prefixes and packages (as the interpreter reports them), the worker's directory, and the
        interpreter file itself (with a venv's ``pyvenv.cfg``). Nothing that exposes a home."""
        python = self.policy.python
        found = paths.system_paths(self.policy.network) + list(paths.python_paths())
        extra = [str(p) for p in self.policy.read_paths] + [str(INWORKER_FILE.parent)]
        extra += [str(f.parent) for f in self._worker_files()]
        extra += [p for p in paths.interpreter_paths(python) if not any(_under(p, f) for f in found)]
        files = [python]  # bound as a file: its directory may be ~/bin
        cfg = os.path.join(os.path.dirname(os.path.dirname(python)), "pyvenv.cfg")
        if os.path.isfile(cfg):
            files.append(cfg)
        extra = [p for p in extra if not paths.exposes_home(p)]
        return found + [p for p in dict.fromkeys(extra + files) if not any(_under(p, f) for f in found)]

    def _worker_files(self) -> list[Path]:
        """The in-worker step files of the layers that are on, beside ``INWORKER_FILE``."""
        return [
            layer.worker_file for layer in registered() if layer.worker_file and self.state.on(layer.name)
        ]

    def _plan(self) -> dict[str, object]:
        """The in-worker plan: every layer's steps, in registry order (a step named again merges)."""
        steps: dict[str, dict[str, Any]] = {}
        files: dict[str, str] = {}
        for layer in registered():
            for step, kwargs in ({} if layer.plain else layer.plan(self.state)).items():
                _merge(steps.setdefault(step, {}), kwargs, step)
                if layer.worker_file is not None:
                    files.setdefault(step, str(layer.worker_file))
        return {
            "umask": 0o077,
            "keep_fds": list(self.state.keep_fds),
            "steps": [[step, kwargs, *([files[step]] if step in files else [])] for step, kwargs in steps.items()],
        }

    def wrap(self, command: Sequence[str]) -> JailedCommand:
        """The jailed form of ``command`` (the worker, which must apply ``CODELOOP_JAIL`` first)."""
        if self._closed:
            raise SandboxError("this jail is closed")
        state = self.state
        state.read = self._read_paths()
        before = len(state.fds)
        try:
            plan = self._plan()
        finally:
            handed = tuple(state.fds[before:])
            self._parent_fds += handed  # the host closes its copies once the worker started
        env: dict[str, str] = {ENV_VAR: json.dumps(plan)}
        jail_bwrap = state.bwrap
        if jail_bwrap is not None:
            argv = bwrap.bwrap_argv(
                jail_bwrap.path,
                jail_bwrap.mode,
                read_only=state.read,
                session_dir=str(self.policy.session_dir),
                tmp_size_bytes=self.policy.tmp_size_mb * 1024 * 1024,
                network=self.policy.network,
                switch_uid=state.uid is not None,
                seccomp_fd=state.bwrap_seccomp_fd,
                command=command,
            )
        else:
            argv = list(command)
            if state.tmpdir is not None:
                env["TMPDIR"] = state.tmpdir
        preexec: Callable[[], None] | None = None
        if state.cgroup is not None:
            fds, preexec = state.cgroup.joiner()
            self._parent_fds += fds
        return JailedCommand(argv, env, handed, preexec)

    def started(self) -> None:
        """The worker is spawned: drop the host's copies of the descriptors handed to it."""
        fds, self._parent_fds = self._parent_fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def uid_lease(self) -> UidLease | None:
        """The session uid this worker runs as, if any."""
        return self.state.uid

    def oom_killed(self) -> bool | None:
        """Whether the kernel killed a process of the session for memory; None: no cgroup to ask.

        Recorded at close, when the cgroup goes away.
        """
        if self._oom is not None:
            return self._oom
        return None if self.state.cgroup is None else self.state.cgroup.oom_killed()

    def close(self) -> None:
        """Kill everything of this session that is left, then free uid, cgroup and temp dir."""
        if self._closed or os.getpid() != self.owner_pid:  # a forked child never frees its parent's jail
            return
        self._closed = True
        self.started()
        state, emptied = self.state, False
        try:
            if state.cgroup is not None:
                self._oom = state.cgroup.oom_killed()
                emptied = state.cgroup.remove()
        finally:
            if state.uid is not None:
                # A session uid cannot leave its cgroup (root owns cgroup.procs): an emptied group
                # means no process of the uid is left, and the sweep (two process spawns) is moot.
                state.uid.release(sweep=not emptied)
            if state.tmpdir is not None:
                with contextlib.suppress(SandboxError):
                    if self._tmp_holder:
                        remove_private_tmp(state.tmpdir)
                    else:
                        remove_tree(state.tmpdir)
            while state.closers:  # what other layers hold, once the session's processes are gone
                state.closers.pop()()
        with _live_lock:
            _live.discard(self)


def _merge(into: dict[str, Any], kwargs: dict[str, Any], step: str) -> None:
    """Add one layer's arguments of ``step`` to those planned: a dict extends, anything else must agree."""
    for key, value in kwargs.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        elif key in into and into[key] != value:
            raise SandboxError(f"layers disagree on {step}({key}=...): {into[key]!r} and {value!r}")
        else:
            into[key] = value


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
