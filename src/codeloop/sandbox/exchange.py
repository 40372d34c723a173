"""One request/reply exchange with a worker, multiplexed with its output, under a host deadline.

The calling thread polls the reply pipe, both output pipes and the worker's pidfd, so output is
captured (and streamed) as it arrives and the deadline holds whatever the worker does. Reply
frames that lack the request's nonce are dropped and counted. The worker flushes its output
before it replies, so when the reply is readable its output already sits in the pipes and shows
in the same poll: the common cell costs one poll and one read.
"""

from __future__ import annotations

import math
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from codeloop.sandbox.output import BoundedOutput
from codeloop.sandbox.process import WorkerProcess
from codeloop.sandbox.protocol import ProtocolError, ok_reply_frame

__all__ = ["Capture", "Ending", "Exchanged", "before_request", "exchange"]

OnOutput = Callable[[str, str], None]
_READ = 1 << 16
_DRAIN_READS = 256  # reads per pipe after the reply at most (a busy background writer cannot stall us)
_NO_PIDFD_POLL_MS = 50  # without a pidfd, look for the worker's exit this often
# A quiet cell's whole reply is this head, the 16-char nonce and `"}`: recognised by a compare, not a JSON parse.
_OK_HEAD = ok_reply_frame("0" * 16)[: -(16 + 2)]


class Ending(Enum):
    """Why an exchange stopped."""

    REPLY = "reply"
    TIMEOUT = "timeout"
    DIED = "died"  # the worker exited, or closed its reply pipe
    OUTPUT_LIMIT = "output_limit"
    PROTOCOL = "protocol"  # the worker sent bytes that are not frames


@dataclass
class Exchanged:
    """How one request/reply exchange with the worker ended (not the eval checker's ``Outcome``)."""

    ending: Ending
    reply: dict[str, Any] | None = None
    detail: str = ""
    forged: int = 0


class Capture:
    """A cell's stdout/stderr: bounded buffers (made on first byte), the live callback, the hard cap."""

    def __init__(self, limit: int, hard_limit: int, on_output: OnOutput | None) -> None:
        self.limit = limit
        self.hard_limit = hard_limit
        self.on_output = on_output
        self.total = 0
        self.callback_error: BaseException | None = None
        self.buffers: dict[str, BoundedOutput] = {}
        self._stdout_fd = -1

    def attach(self, proc: WorkerProcess) -> None:
        self._stdout_fd = proc.pipes.stdout

    def __call__(self, fd: int, data: bytes) -> None:
        name = "stdout" if fd == self._stdout_fd else "stderr"
        buffer = self.buffers.get(name)
        if buffer is None:
            buffer = self.buffers[name] = BoundedOutput(name, self.limit)
        self.total += len(data)
        live = buffer.feed(data)
        if live and self.on_output is not None:
            try:
                self.on_output(name, live)
            except Exception as e:  # a broken callback must not wedge the session
                self.callback_error = e
                self.on_output = None

    @property
    def over_limit(self) -> bool:
        return self.total > self.hard_limit

    def text(self, name: str) -> str:
        buffer = self.buffers.get(name)
        return buffer.text() if buffer is not None else ""

    @property
    def truncated(self) -> bool:
        return any(buffer.truncated for buffer in self.buffers.values())


def _read(fd: int) -> bytes | None:
    """Bytes available now; b"" at EOF; None when nothing is ready."""
    try:
        return os.read(fd, _READ)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _drain(proc: WorkerProcess, capture: Capture, fds: list[int] | set[int]) -> None:
    """Read what is left in these output pipes, up to the hard cap."""
    for fd in fds:
        for _ in range(_DRAIN_READS):
            data = _read(fd)
            if data is None:
                break
            if not data:
                proc.forget_fd(fd)
                break
            capture(fd, data)
            if capture.over_limit:
                return


def before_request(proc: WorkerProcess) -> tuple[bool, dict[str, int] | None]:
    """Between cells: has the worker died since its last reply, and what did it print since?

    The worker flushes a cell's output before replying and the exchange reads it before the
    reply, so bytes waiting in the output pipes now were written after that reply, by a thread
    or process the cell left running. They belong to no cell that is still open: they are read
    and dropped (counted per stream, for a note), never shown as the next cell's output. One
    poll answers both questions (the pidfd is in the poll set).
    """
    pidfd = proc.pidfd
    if pidfd is None:
        died = proc.exited()
        events = proc.poller.poll(0)
    else:
        events = proc.poller.poll(0)
        if not events:  # the usual case
            return False, None
        died = pidfd in [fd for fd, _ in events]
    if died or not events:
        return died, None
    dropped: dict[str, int] = {}
    for fd, _ in events:
        if fd not in proc.open_outputs:
            continue
        total = 0
        for _ in range(_DRAIN_READS):
            data = _read(fd)
            if not data:
                if data == b"":
                    proc.forget_fd(fd)
                break
            total += len(data)
        if total:
            dropped["stdout" if fd == proc.pipes.stdout else "stderr"] = total
    return False, dropped


def _send(fd: int, pending: memoryview) -> memoryview | None:
    """Write what the pipe takes now; None when the worker is gone."""
    try:
        return pending[os.write(fd, pending) :]
    except BlockingIOError:
        return pending
    except OSError:  # broken pipe: the worker closed it or died
        return None


#: the id of the one frame a worker sends unasked, once it is ready (worker.py READY_ID)
READY_ID = "ready"


def exchange(proc: WorkerProcess, frame: bytes, nonce: str, deadline: float, capture: Capture) -> Exchanged:
    """Send ``frame`` and collect output until the reply with ``nonce``, a death, or the deadline."""
    capture.attach(proc)
    pipes = proc.pipes
    request_fd, reply_fd, pidfd = pipes.request, pipes.reply, proc.pidfd
    poller = proc.poller
    outputs = proc.open_outputs
    forged = 0
    saw_ready = False
    try:
        sent = os.write(request_fd, frame)
    except BlockingIOError:
        sent = 0
    except OSError:  # broken pipe: the worker closed it or died
        return Exchanged(Ending.DIED, detail="the worker closed its request pipe")
    pending: memoryview | None = None
    if sent < len(frame):  # a big cell: the rest goes as the worker reads
        pending = memoryview(frame)[sent:]
        poller.register(request_fd, select.POLLOUT)
    ok_frame = _OK_HEAD + nonce.encode("ascii") + b'"}'  # a quiet cell's whole reply, as the worker writes it
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return Exchanged(Ending.TIMEOUT, forged=forged)
            wait_ms = math.ceil(left * 1000)
            events = poller.poll(wait_ms if pidfd is not None else min(wait_ms, _NO_PIDFD_POLL_MS))
            died = reply_ready = request_ready = False
            ready_outputs: list[int] = []
            for fd, _ in events:
                if fd == reply_fd:
                    reply_ready = True
                elif fd in outputs:
                    ready_outputs.append(fd)
                elif fd == pidfd:
                    died = True
                elif fd == request_fd:
                    request_ready = True
            if ready_outputs:
                _drain(proc, capture, ready_outputs)  # output before the reply: it was written first
                if capture.over_limit:
                    return Exchanged(Ending.OUTPUT_LIMIT, forged=forged)
            if pidfd is None and not died:
                died = proc.exited()
            if reply_ready:
                data = _read(reply_fd)
                if data == b"":
                    died = True
                    proc.forget_fd(reply_fd)
                elif data:
                    if data == ok_frame and not proc.reader.pending:
                        return Exchanged(Ending.REPLY, reply={"status": "ok", "id": nonce}, forged=forged)
                    try:
                        frames = proc.reader.feed(data)
                    except ProtocolError as e:
                        return Exchanged(Ending.PROTOCOL, detail=str(e), forged=forged)
                    for message in frames:
                        if message.get("id") == nonce:
                            if saw_ready:
                                # This read began with the worker's ready frame, so this poll
                                # could not yet see the output the cell wrote before its reply.
                                _drain(proc, capture, set(outputs))
                                if capture.over_limit:
                                    return Exchanged(Ending.OUTPUT_LIMIT, forged=forged)
                            return Exchanged(Ending.REPLY, reply=message, forged=forged)
                        if message.get("id") == READY_ID and not proc.ready:
                            proc.ready = saw_ready = True
                            continue
                        forged += 1
            if pending and request_ready:
                pending = _send(request_fd, pending)
                if pending is None:
                    died = True
                elif not pending:
                    poller.unregister(request_fd)
            if died:
                _drain(proc, capture, set(outputs))
                try:  # it may have replied just before it exited
                    for message in proc.reader.feed(_read(reply_fd) or b""):
                        if message.get("id") == nonce:
                            return Exchanged(Ending.REPLY, reply=message, forged=forged)
                        if message.get("id") == READY_ID:
                            proc.ready = True
                except ProtocolError:
                    pass
                return Exchanged(Ending.DIED, forged=forged)
    finally:
        if pending and pipes.request >= 0:
            try:
                poller.unregister(pipes.request)
            except (KeyError, ValueError):
                pass
