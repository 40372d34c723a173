"""One running worker process seen from the host: its pipes, its exit, and how to stop it.

The worker leads its own process group (it was started with setsid), so signals go to the whole
group. A stop goes in stages: close the request pipe and send SIGINT (a well-behaved worker
exits), then SIGTERM, then SIGKILL, with a short grace each. The group is killed again before the
worker is reaped, while its pid cannot yet be reused, so nothing it started is left behind.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from codeloop.sandbox.protocol import FrameReader

__all__ = ["WorkerPipes", "WorkerProcess"]

#: sink for output read while the worker is being stopped: (fd, bytes)
Sink = Callable[[int, bytes], None]


@dataclass
class WorkerPipes:
    """The host's ends of the four pipes to one worker (all non-blocking)."""

    request: int  # write: framed requests
    reply: int  # read: framed replies
    stdout: int  # read
    stderr: int  # read

    def all(self) -> tuple[int, ...]:
        return (self.request, self.reply, self.stdout, self.stderr)


@dataclass
class WorkerProcess:
    """A spawned worker: pid (== process group id), pipes, and exit bookkeeping."""

    pid: int
    pipes: WorkerPipes
    popen: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    status: int | None = None  # raw wait status once reaped
    signals_sent: list[int] = field(default_factory=list)
    reader: FrameReader = field(default_factory=FrameReader)
    open_outputs: set[int] = field(default_factory=set)
    poller: select.poll = field(default_factory=select.poll)
    #: the pid that spawned it: a forked child must not touch its parent's workers
    owner_pid: int = field(default_factory=os.getpid)
    #: the worker runs under a wrapper (a jail) that turns signal deaths into exit codes 128+n
    wrapped: bool = False
    #: jail: runs once the worker is reaped (kills what it left, frees uid and cgroup)
    on_reaped: Callable[[], None] | None = None
    #: jail: whether the kernel killed the session for memory (its cgroup says so)
    oom_check: Callable[[], bool | None] | None = None
    #: the worker said it was ready for requests; one that dies before did not start
    ready: bool = False

    def __post_init__(self) -> None:
        self.open_outputs = {self.pipes.stdout, self.pipes.stderr}
        for fd in (self.pipes.reply, self.pipes.stdout, self.pipes.stderr):
            self.poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)

    # --- state -------------------------------------------------------------------------------

    @property
    def reaped(self) -> bool:
        return self.status is not None

    def exited(self) -> bool:
        """True once the worker has exited (reaped or not); never blocks, never reaps."""
        if self.reaped:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # reaped elsewhere (e.g. by a SIGCHLD handler)
            self.status = 0
            return True

    def wait_exit(self, timeout: float, sink: Sink | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the worker to exit, reading its output meanwhile."""
        deadline = time.monotonic() + timeout
        while not self.exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.pidfd is None:
                time.sleep(min(left, 0.005))
                continue
            for fd, _ in self.poller.poll(max(1, int(left * 1000))):
                if fd in self.open_outputs:
                    self._read_into(fd, sink)
                elif fd == self.pipes.reply:
                    self._read_into(fd, None)
        return True

    def _read_into(self, fd: int, sink: Sink | None) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.forget_fd(fd)
        elif sink is not None and fd in self.open_outputs:
            sink(fd, data)

    def forget_fd(self, fd: int) -> None:
        """Stop polling an fd that reached EOF (its contents stay readable for nobody)."""
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(fd)
        self.open_outputs.discard(fd)

    # --- signals and stopping ----------------------------------------------------------------

    def signal_group(self, sig: int, *, record: bool = True) -> None:
        """Signal the whole process group; only while the worker is unreaped (no pid reuse).

        ``record`` notes the signal as ours, so its death is not blamed on the OOM killer."""
        if self.reaped or os.getpid() != self.owner_pid:
            return
        if record:
            self.signals_sent.append(sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def close_request(self) -> None:
        """Close the request pipe: an idle worker reads EOF and exits by itself."""
        if self.pipes.request >= 0:
            with contextlib.suppress(OSError):
                os.close(self.pipes.request)
            self.pipes.request = -1

    def stop(self, grace: float, sink: Sink | None = None) -> None:
        """Stop the worker and everything in its group: EOF+SIGINT, SIGTERM, SIGKILL; then reap."""
        if self.reaped or os.getpid() != self.owner_pid:
            return
        self.close_request()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.exited():
                break
            self.signal_group(sig)
            if self.wait_exit(grace if sig != signal.SIGKILL else 10.0, sink):
                break
        self.signal_group(signal.SIGKILL, record=False)  # children the worker left in its group
        self.reap()

    def reap(self) -> None:
        """Collect the exit status (blocking; call once the worker has exited or been killed)."""
        if self.reaped:
            return
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            status = 0
        self.status = status
        if self.popen is not None:
            self.popen.returncode = os.waitstatus_to_exitcode(status)
        if self.on_reaped is not None:  # jail cleanup
            self.on_reaped()

    def close(self) -> None:
        """Release the host's fds (after stop/reap)."""
        for fd in (*self.pipes.all(), self.pidfd):
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.pipes = WorkerPipes(-1, -1, -1, -1)
        self.pidfd = None
        self.open_outputs.clear()

    # --- reporting ---------------------------------------------------------------------------

    def death_signal(self) -> int | None:
        """The signal that ended the worker, if any. A wrapper such as bwrap reports its child's
        signal death as exit code 128+n, so with ``wrapped`` such codes count as signals too."""
        if self.status is None:
            return None
        if os.WIFSIGNALED(self.status):
            return os.WTERMSIG(self.status)
        code = os.WEXITSTATUS(self.status)
        if self.wrapped and 128 < code < 128 + signal.NSIG:
            return code - 128
        return None

    def killed_from_outside(self) -> bool:
        """Died of SIGKILL that we did not send: what the kernel's out-of-memory killer does."""
        verdict = self.oom_check() if self.oom_check is not None else None
        if verdict is not None:  # jail: the session's memory cgroup knows for sure
            return verdict
        return self.death_signal() == signal.SIGKILL and signal.SIGKILL not in self.signals_sent

    def describe_exit(self) -> str:
        if self.status is None:
            return "still running"
        sig = self.death_signal()
        if sig is None:
            return f"exited with code {os.WEXITSTATUS(self.status)}"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if os.WIFSIGNALED(self.status):
            return f"killed by {name}"
        return f"killed by {name} (exit code {os.WEXITSTATUS(self.status)} from its jail wrapper)"
