"""Start a worker from a :class:`Launch`, with its pipes at the fixed fd numbers of launcher.py.

Without a ``preexec_fn`` this uses ``os.posix_spawn`` (vfork speed, safe with threads, no Python
code between fork and exec); the child then starts in the host's cwd and the worker changes to
the session directory named on its command line. With a ``preexec_fn`` (a jail's rlimits, say) it
uses ``subprocess.Popen``, which honours ``Launch.cwd``; there, if exec itself fails, the error
surfaces as the worker exiting with code 255 rather than as an exception.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable

from codeloop.errors import SandboxError
from codeloop.sandbox.launch_types import REPLY_FD, REQUEST_FD, Launch
from codeloop.sandbox.process import WorkerPipes, WorkerProcess

__all__ = ["spawn_worker"]

# Python ignores these in the host; ignored dispositions survive exec, so reset them.
_RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)
# Child ends are lifted to fds >= this before they are placed, so no dup2 clobbers another.
_HIGH_FD = 10


def _lift(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    os.close(fd)
    return high


class _SpawnThread:
    """Runs every spawn on one long-lived thread.

    A jail's parent-death signal (bwrap --die-with-parent, PR_SET_PDEATHSIG) fires when the
    *thread* that forked the worker ends, not the process. Sessions are created and restarted
    from any thread (pool refills, request handlers), so their workers are forked here instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], WorkerProcess], list[object], threading.Event]] | None = None
        self._owner = -1

    def call(self, job: Callable[[], WorkerProcess]) -> WorkerProcess:
        with self._lock:
            if self._jobs is None or self._owner != os.getpid():  # first use, or a forked child
                self._jobs = queue.SimpleQueue()
                self._owner = os.getpid()
                threading.Thread(target=self._serve, args=(self._jobs,), name="codeloop-spawner", daemon=True).start()
            jobs = self._jobs
        box: list[object] = []
        done = threading.Event()
        jobs.put((job, box, done))
        done.wait()
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, WorkerProcess)
        return outcome

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], WorkerProcess], list[object], threading.Event]]) -> None:
        while True:
            job, box, done = jobs.get()
            try:
                box.append(job())
            except BaseException as e:  # handed to the caller, raised in its thread
                box.append(e)
            done.set()


_SPAWNER = _SpawnThread()


def spawn_worker(launch: Launch) -> WorkerProcess:
    """Start one worker process in a new session; raise SandboxError if it cannot start."""
    return _SPAWNER.call(lambda: _spawn(launch))


def _spawn(launch: Launch) -> WorkerProcess:
    host: dict[str, int] = {}
    child: dict[str, int] = {}
    try:
        for name in ("req", "rep", "out", "err"):
            r, w = os.pipe()
            ours, theirs = (w, r) if name == "req" else (r, w)
            host[name] = ours
            try:
                child[name] = _lift(theirs)
            except OSError:
                os.close(theirs)
                raise
        pid, popen = _start(launch, child)
    except BaseException as e:  # OSError, or SubprocessError at interpreter exit ("preexec_fn not supported")
        for fd in host.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        if launch.jail is not None:  # jail: free the uid and cgroup of a worker that never started
            launch.jail.close()
        if not isinstance(e, OSError | subprocess.SubprocessError):
            raise
        raise SandboxError(f"cannot start the sandbox worker ({launch.argv[0]}): {e}") from e
    finally:
        for fd in child.values():
            with contextlib.suppress(OSError):
                os.close(fd)
    for fd in host.values():
        os.set_blocking(fd, False)
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):  # old kernel: exits are polled instead
        pidfd = None
    pipes = WorkerPipes(request=host["req"], reply=host["rep"], stdout=host["out"], stderr=host["err"])
    proc = WorkerProcess(pid=pid, pipes=pipes, popen=popen, pidfd=pidfd)
    if launch.jail is not None:  # jail: drop the host's copies of handed-over fds; clean up after reaping
        launch.jail.started()
        proc.on_reaped, proc.oom_check = launch.jail.close, launch.jail.oom_killed
        proc.wrapped = True
    return proc


def _start(launch: Launch, child: dict[str, int]) -> tuple[int, subprocess.Popen[bytes] | None]:
    clash = [fd for fd in launch.pass_fds if fd < _HIGH_FD and fd not in (REQUEST_FD, REPLY_FD)]
    if clash:  # they would be overwritten by the fixed fds 0-4 (a jail must lift its fds, as we do)
        raise OSError(f"Launch.pass_fds {clash} are below {_HIGH_FD}: they clash with the worker's fixed fds")
    if launch.preexec_fn is None:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, child["out"], 1),
            (os.POSIX_SPAWN_DUP2, child["err"], 2),
            (os.POSIX_SPAWN_DUP2, child["req"], REQUEST_FD),
            (os.POSIX_SPAWN_DUP2, child["rep"], REPLY_FD),
        ]
        # jail: keep Launch.pass_fds (e.g. a seccomp program); dup2 onto itself clears close-on-exec
        actions += [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in launch.pass_fds if fd not in (REQUEST_FD, REPLY_FD)]
        spawn = os.posix_spawn if os.path.isabs(launch.argv[0]) else os.posix_spawnp
        pid = spawn(
            launch.argv[0],
            launch.argv,
            launch.env,
            file_actions=actions,
            setsid=True,
            setsigdef=_RESET_SIGNALS,
            setsigmask=(),
        )
        return pid, None

    jail_setup = launch.preexec_fn
    keep = [fd for fd in launch.pass_fds if fd not in (REQUEST_FD, REPLY_FD)]

    def child_setup() -> None:  # runs in the child between fork and exec
        os.dup2(child["req"], REQUEST_FD)
        os.dup2(child["rep"], REPLY_FD)
        for fd in keep:
            os.set_inheritable(fd, True)
        jail_setup()

    popen = subprocess.Popen(
        launch.argv,
        stdin=subprocess.DEVNULL,
        stdout=child["out"],
        stderr=child["err"],
        env=launch.env,
        cwd=launch.cwd,
        close_fds=False,
        start_new_session=True,
        preexec_fn=child_setup,
    )
    return popen.pid, popen
