"""Pre-started workers, so a new session answers in milliseconds instead of an interpreter start.

Workers are interchangeable only when their launch profile (interpreter, limits, env, session
root) is equal, so the pool is keyed by it. Taking a worker spawns its replacement at once; the
new process boots in the background while the taker runs. Pooled workers are stopped at
interpreter exit, and a forked child forgets (but never signals) its parent's workers.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

from codeloop.errors import SandboxError
from codeloop.sandbox import mplcache
from codeloop.sandbox.config import SandboxConfig
from codeloop.sandbox.hostfs import new_session_dir, remove_session
from codeloop.sandbox.jail.uids import UidLease
from codeloop.sandbox.launch_types import Launch, LaunchSpec
from codeloop.sandbox.launcher import build_launch
from codeloop.sandbox.process import WorkerProcess
from codeloop.sandbox.spawn import spawn_worker

__all__ = ["POOL", "StartedWorker", "WorkerPool", "start_worker"]


@dataclass
class StartedWorker:
    """A worker with its launch and the session directory it owns."""

    proc: WorkerProcess
    session_dir: Path
    launch: Launch
    #: whether the host's matplotlib font cache was copied into the session directory
    font_cache: bool = False

    @property
    def uid_lease(self) -> UidLease | None:
        """The session uid this worker runs as (a jail's lease), if any."""
        return self.launch.jail.uid_lease if self.launch.jail is not None else None


def start_worker(
    template: LaunchSpec, session_dir: Path, *, fresh: bool = False, uid_lease: UidLease | None = None
) -> StartedWorker:
    """Build the launch for ``session_dir`` and spawn the worker.

    ``fresh``: the directory was just made for this worker, so the host's matplotlib font cache
    (when one is ready) goes in first; a jail then hands it to the session uid with the rest.
    ``uid_lease``: the session uid of the session's earlier workers: a restart keeps it, so the
    directory (which the session filled) is never handed over again."""
    seeded = mplcache.seed(session_dir, template.python) if fresh else False
    launch = build_launch(dataclasses.replace(template, session_dir=session_dir), uid_lease=uid_lease)
    started = StartedWorker(spawn_worker(launch), session_dir, launch, font_cache=seeded)
    if started.uid_lease is not None:
        started.uid_lease.retain()  # the session's hold, released by the session (or the pool) at the end
    return started


class WorkerPool:
    """Idle workers by profile; at most ``per_profile`` each and ``max_profiles`` profiles."""

    def __init__(self, per_profile: int = 1, max_profiles: int = 4, stop_grace: float = 0.1) -> None:
        self.per_profile = per_profile
        self.max_profiles = max_profiles
        self.stop_grace = stop_grace
        self._idle: OrderedDict[SandboxConfig, deque[StartedWorker]] = OrderedDict()
        self._starting: dict[SandboxConfig, int] = {}
        self._queued = 0  # background refills not finished yet
        self._closed = False
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)

    def take(self, config: SandboxConfig) -> StartedWorker | None:
        """A live idle worker for this config's profile (``config.pool_key``), or None."""
        key = config.pool_key
        template = config.launch_spec()
        while True:
            with self._lock:
                idle = self._idle.get(key)
                worker = idle.popleft() if idle else None
            if worker is None:
                return None
            if not worker.proc.exited():
                if not worker.font_cache:  # started before the cache was ready; it has run no cell yet
                    worker.font_cache = mplcache.seed(worker.session_dir, template.python)
                return worker
            self._discard(worker)  # died while idle (killed from outside): try the next one

    def refill(self, config: SandboxConfig) -> None:
        """Top the profile up to ``per_profile`` idle workers (spawning is cheap; booting is async)."""
        key = config.pool_key
        template, root = config.launch_spec(), config.root
        evicted: list[StartedWorker] = []
        with self._lock:
            if self._closed:
                return
            idle = self._idle.setdefault(key, deque())
            self._idle.move_to_end(key)
            missing = self.per_profile - len(idle) - self._starting.get(key, 0)
            self._starting[key] = self._starting.get(key, 0) + max(missing, 0)
            while len(self._idle) > self.max_profiles:
                _, old = self._idle.popitem(last=False)
                evicted.extend(old)
        for old_worker in evicted:
            self._discard(old_worker)
        for _ in range(missing):
            worker: StartedWorker | None = None
            session_dir = new_session_dir(root)
            try:
                worker = start_worker(template, session_dir, fresh=True)
            except BaseException as e:  # e.g. SubprocessError at interpreter exit: nothing is left behind
                with contextlib.suppress(SandboxError):
                    remove_session(session_dir)
                if not isinstance(e, SandboxError):  # the caller's own spawn reports a SandboxError
                    raise
            with self._lock:
                self._starting[key] -= 1
                keep = worker is not None and not self._closed
                if worker is not None and keep:
                    self._idle.setdefault(key, deque()).append(worker)
                self._settled.notify_all()
            if worker is not None and not keep:
                self._discard(worker)  # shut down meanwhile (interpreter exit)

    def refill_in_background(self, config: SandboxConfig) -> None:
        """``refill`` on a thread: a jailed launch costs tens of ms that a new session should not wait for."""
        with self._lock:
            self._queued += 1  # counted at once, so wait_for_refills sees a refill that has not begun

        def work() -> None:
            try:
                self.refill(config)
            except Exception:  # a spare worker is an optimisation; the next session spawns its own
                pass
            finally:
                with self._lock:
                    self._queued -= 1
                    self._settled.notify_all()

        threading.Thread(target=work, name="codeloop-sandbox-pool", daemon=True).start()

    def wait_for_refills(self, timeout: float) -> bool:
        """Wait until no spare worker is being started; False if ``timeout`` passed first."""
        with self._settled:
            return self._settled.wait_for(lambda: not self._queued and not any(self._starting.values()), timeout)

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._idle.values())

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for q in self._idle.values() for w in q]

    def _discard(self, worker: StartedWorker) -> None:
        worker.proc.stop(self.stop_grace)
        worker.proc.close()
        lease = worker.uid_lease
        if lease is not None:
            lease.release(sweep=False)
        with contextlib.suppress(SandboxError):
            remove_session(worker.session_dir)

    def shutdown(self) -> None:
        """Stop every idle worker, remove its directory, and take no new ones (at interpreter exit)."""
        self.wait_for_refills(5.0)  # a spare being started now would otherwise outlive us
        with self._lock:
            workers = [w for q in self._idle.values() for w in q]
            self._idle.clear()
            self._closed = True
        for worker in workers:
            if worker.proc.owner_pid == os.getpid():
                self._discard(worker)

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's workers without signalling them or deleting dirs."""
        for queue in self._idle.values():
            for worker in queue:
                worker.proc.close()
        self._idle.clear()
        self._starting.clear()
        self._queued = 0
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)


POOL = WorkerPool()
atexit.register(POOL.shutdown)
os.register_at_fork(after_in_child=POOL.forget_after_fork)
