"""One request/reply exchange with a worker, multiplexed with its output, under a host deadline.

The calling thread polls the reply pipe, both output pipes and the worker's pidfd, so output is
captured (and streamed) as it arrives and the deadline holds whatever the worker does. Reply
frames that lack the request's nonce are dropped and counted.
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
from codeloop.sandbox.protocol import ProtocolError

__all__ = ["Ending", "Outcome", "exchange"]

OnOutput = Callable[[str, str], None]
_READ = 1 << 16
_DRAIN_READS = 256  # at most this many reads per pipe after the reply (a busy writer cannot stall us)


class Ending(Enum):
    """Why an exchange stopped."""

    REPLY = "reply"
    TIMEOUT = "timeout"
    DIED = "died"  # the worker exited, or closed its reply pipe
    OUTPUT_LIMIT = "output_limit"
    PROTOCOL = "protocol"  # the worker sent bytes that are not frames


@dataclass
class Outcome:
    ending: Ending
    reply: dict[str, Any] | None = None
    detail: str = ""
    forged: int = 0


class _Capture:
    """Routes output bytes to the bounded buffers and the live callback; enforces the hard cap."""

    def __init__(
        self, proc: WorkerProcess, outputs: dict[str, BoundedOutput], on_output: OnOutput | None, hard_limit: int
    ) -> None:
        self.by_fd = {proc.pipes.stdout: outputs["stdout"], proc.pipes.stderr: outputs["stderr"]}
        self.on_output = on_output
        self.hard_limit = hard_limit
        self.total = 0
        self.callback_error: BaseException | None = None

    def __call__(self, fd: int, data: bytes) -> None:
        buffer = self.by_fd[fd]
        self.total += len(data)
        live = buffer.feed(data)
        if live and self.on_output is not None:
            try:
                self.on_output(buffer.name, live)
            except Exception as e:  # a broken callback must not wedge the session
                self.callback_error = e
                self.on_output = None

    @property
    def over_limit(self) -> bool:
        return self.total > self.hard_limit


def _read(fd: int) -> bytes | None:
    """Bytes available now; b"" at EOF; None when nothing is ready."""
    try:
        return os.read(fd, _READ)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _drain(proc: WorkerProcess, capture: _Capture) -> None:
    """Read what the worker already wrote to stdout/stderr (it flushes before replying)."""
    for fd in list(proc.open_outputs):
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


def exchange(
    proc: WorkerProcess,
    frame: bytes,
    nonce: str,
    deadline: float,
    outputs: dict[str, BoundedOutput],
    on_output: OnOutput | None,
    hard_limit: int,
) -> tuple[Outcome, _Capture]:
    """Send ``frame`` and collect output until the reply with ``nonce``, a death, or the deadline."""
    capture = _Capture(proc, outputs, on_output, hard_limit)
    pipes = proc.pipes
    pending = memoryview(frame)
    forged = 0
    try:
        pending = pending[os.write(pipes.request, pending) :]
    except BlockingIOError:
        pass
    except OSError:  # broken pipe: the worker is gone
        return Outcome(Ending.DIED, detail="the worker closed its request pipe"), capture
    if pending:
        proc.poller.register(pipes.request, select.POLLOUT)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return Outcome(Ending.TIMEOUT, forged=forged), capture
            died = False
            for fd, _ in proc.poller.poll(math.ceil(left * 1000) if proc.pidfd is not None else min(50, math.ceil(left * 1000))):
                if fd == pipes.reply:
                    data = _read(fd)
                    if data is None:
                        continue
                    if not data:
                        died = True
                        proc.forget_fd(fd)
                        continue
                    try:
                        frames = proc.reader.feed(data)
                    except ProtocolError as e:
                        return Outcome(Ending.PROTOCOL, detail=str(e), forged=forged), capture
                    for message in frames:
                        if message.get("id") == nonce:
                            _drain(proc, capture)
                            return Outcome(Ending.REPLY, reply=message, forged=forged), capture
                        forged += 1
                elif fd in proc.open_outputs:
                    data = _read(fd)
                    if data is None:
                        continue
                    if not data:
                        proc.forget_fd(fd)
                        continue
                    capture(fd, data)
                    if capture.over_limit:
                        return Outcome(Ending.OUTPUT_LIMIT, forged=forged), capture
                elif fd == pipes.request and pending:
                    try:
                        pending = pending[os.write(fd, pending) :]
                    except BlockingIOError:
                        continue
                    except OSError:
                        died = True
                        continue
                    if not pending:
                        proc.poller.unregister(fd)
                elif fd == proc.pidfd:
                    died = True
            if proc.pidfd is None and not died:
                died = proc.exited()
            if died:
                _drain(proc, capture)
                last = _read(pipes.reply)
                try:
                    for message in proc.reader.feed(last or b""):
                        if message.get("id") == nonce:  # it replied, then exited
                            return Outcome(Ending.REPLY, reply=message, forged=forged), capture
                except ProtocolError:
                    pass
                return Outcome(Ending.DIED, forged=forged), capture
    finally:
        if pending and pipes.request >= 0:
            try:
                proc.poller.unregister(pipes.request)
            except (KeyError, ValueError):
                pass
