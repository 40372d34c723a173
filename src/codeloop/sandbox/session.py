"""The stateful sandbox session: one persistent worker process, one lock, restart on failure.

``Sandbox`` implements the session contract (docs/architecture.md). Each ``run`` sends one framed request and waits for
the reply under a host-side deadline; a timeout, crash, memory kill or output flood stops the
worker's whole process group and starts a fresh worker in the same directory, and the result says
plainly that the interpreter state was lost.
"""

from __future__ import annotations

import binascii
import contextlib
import os
import queue
import re
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from codeloop.errors import ConfigError, SandboxError
from codeloop.sandbox import leftovers, mplcache
from codeloop.sandbox.config import SandboxConfig, check_limits, positive
from codeloop.sandbox.exchange import Capture, Ending, Exchanged, before_request, exchange
from codeloop.sandbox.hostfs import new_session_dir, remove_session
from codeloop.sandbox.jail.launch import missing_layers_line
from codeloop.sandbox.jail.uids import UidLease
from codeloop.sandbox.layers import strict_layers
from codeloop.sandbox.pool import POOL, StartedWorker, start_worker
from codeloop.sandbox.process import WorkerProcess
from codeloop.sandbox.protocol import NonceSource, ProtocolError, encode_limits, encode_run_request
from codeloop.sandbox.result import ErrorInfo, OutputChunk, RunResult, RunStatus

__all__ = ["Sandbox"]

#: what ``strict=True`` requires (SECURITY.md): without these the session refuses to start
STRICT_LAYERS = strict_layers(network=True)

#: cells that plot: the host builds its shared matplotlib font cache when it sees one
_USES_MATPLOTLIB = re.compile(r"matplotlib|pyplot|seaborn|\.plot\(")

#: the statuses a worker may report (the others are decided by the host)
_REPLY_STATUS = {"ok": RunStatus.OK, "error": RunStatus.ERROR, "memory": RunStatus.MEMORY}

STATE_LOST = (
    "the sandbox restarted: variables, imports and definitions from earlier cells are gone "
    "(files in the session directory are kept)"
)


#: bumped in a forked child, so a session can tell it was inherited without a getpid() per call
_fork_generation = [0]
os.register_at_fork(after_in_child=lambda: _fork_generation.__setitem__(0, _fork_generation[0] + 1))


class _Resources:
    """What must be released even if the Sandbox is never closed (used by the finalizer)."""

    def __init__(self, worker: StartedWorker) -> None:
        self.proc: WorkerProcess | None = worker.proc
        self.session_dir = worker.session_dir
        #: the session uid, held for the session's whole life: restarts reuse it (no re-chown)
        self.uid_lease: UidLease | None = worker.uid_lease
        self.owner_pid = os.getpid()
        self.fork_generation = _fork_generation[0]
        self.released = False

    def release(self, grace: float) -> None:
        """Stop the worker, free the uid and remove the directory; the directory goes even if
        stopping failed. Raises SandboxError (after doing all it can) when something was left."""
        if os.getpid() != self.owner_pid or self.released:  # a forked child must not touch its parent's session
            return
        self.released = True
        problems: list[str] = []
        try:
            if self.proc is not None:
                proc, self.proc = self.proc, None
                try:
                    proc.stop(grace)
                finally:
                    proc.close()
        except Exception as e:
            problems.append(f"stopping the worker failed: {e!r}")
        if self.uid_lease is not None:
            lease, self.uid_lease = self.uid_lease, None
            try:
                lease.release(sweep=False)  # the worker's jail swept the uid when it was reaped
            except Exception as e:
                problems.append(f"releasing the session uid failed: {e!r}")
        try:
            remove_session(self.session_dir)
        except Exception as e:
            problems.append(str(e))
        if problems:
            raise SandboxError("closing the sandbox session: " + "; ".join(problems))


def _release_quietly(res: _Resources, grace: float) -> None:
    """The finalizer's release (at garbage collection or exit): nobody is left to tell."""
    with contextlib.suppress(SandboxError):
        res.release(grace)


def _clean(text: Any) -> str:
    """A str safe to print and encode (lone surrogates from the worker become '?')."""
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


#: notes a reply may add at most (a worker is not trusted)
_MAX_NOTES = 50


def _bounded(text: str, limit: int, what: str) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying so (limits the host applies itself)."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [codeloop: {what} truncated, {len(text) - limit} more characters]"


def _display_path(path: object) -> str:
    """A file name from the worker as printable text, by the worker's own rule: bytes that are not
    UTF-8 (surrogate-escaped by the OS layer) become ``\\xNN``; any other lone surrogate (a worker
    is not trusted) becomes ``\\uXXXX``. Valid names pass unchanged."""
    text = str(path)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _env_items(env: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if env is not None and not isinstance(env, Mapping):
        raise ConfigError(f"env must be a mapping of str to str, not {env!r}")
    return tuple((env or {}).items())


def _limit_items(limits: Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
    return tuple(check_limits(limits if limits is not None else {}).items())


class Sandbox:
    """A stateful Python session in its own worker process (see docs/architecture.md).

    Thread-safe: calls on one session are serialised by its lock; many sessions run in parallel.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        memory_mb: int | None = 1024,
        network: bool = False,
        *,
        cpu_seconds: int | None = None,
        max_output: int = 1 << 20,
        output_hard_limit: int | None = None,
        max_repr: int = 20_000,
        max_figures: int = 20,
        max_files: int = 200,
        env: Mapping[str, str] | None = None,
        root: str | os.PathLike[str] | None = None,
        python: str | None = None,
        prestart: bool = True,
        strict: bool = False,
        stop_grace: float = 0.25,
        require: Iterable[str] = (),
        jail: bool = True,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        config = SandboxConfig(
            timeout=timeout,
            memory_mb=memory_mb,
            network=network,
            cpu_seconds=cpu_seconds,
            max_output=max_output,
            output_hard_limit=output_hard_limit,
            max_repr=max_repr,
            max_figures=max_figures,
            max_files=max_files,
            env=_env_items(env),
            root=Path(root) if root is not None else None,
            python=python,
            strict=strict,
            stop_grace=stop_grace,
            require=tuple(require) if not isinstance(require, str) else (require,),
            jail=jail,
            limits=_limit_items(limits),
        )
        self.config = config
        self.timeout = config.timeout
        self.max_output = config.max_output
        self.output_hard_limit = config.output_hard_limit or 0
        self.max_repr = config.max_repr
        self.max_figures = config.max_figures
        self.max_files = config.max_files
        self.stop_grace = config.stop_grace
        self._root = config.root
        self._template = config.launch_spec()
        worker = POOL.take(config) if prestart else None
        if worker is None:
            session_dir = new_session_dir(self._root)
            try:
                worker = start_worker(self._template, session_dir, fresh=True)
            except BaseException:
                with contextlib.suppress(SandboxError):
                    remove_session(session_dir)
                raise
        leftovers.sweep_soon(self._root)  # holders of dead processes here: in the background, rate-limited
        # Top the pool up after this session's first result (or at close): starting a jailed spare
        # takes tens of ms of host CPU that would otherwise delay that first result.
        self._refill_owed = prestart
        self._launch = worker.launch
        self._res = _Resources(worker)
        self._finalizer = weakref.finalize(self, _release_quietly, self._res, 0.05)
        self._lock = threading.Lock()
        self._closed = False
        self._cell = 0
        self._pending_notes: list[str] = []
        self._limits = encode_limits(config.max_repr, config.max_figures, config.max_files)
        self._nonces = NonceSource()
        self._pending_restart: str | None = None  # why the worker must restart after this cell
        self._mpl_requested = False

    # --- public properties ---------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """The session's working directory (removed by ``close``)."""
        return self._res.session_dir

    @property
    def isolation(self) -> dict[str, bool]:
        """Which isolation layers are active for this session's worker."""
        return dict(self._launch.isolation)

    @property
    def isolation_notes(self) -> list[str]:
        """Why each inactive layer is off."""
        return list(self._launch.notes)

    @property
    def isolation_warning(self) -> str | None:
        """One line for a face to print (on stderr) when an isolation layer is off; None when all are on."""
        return missing_layers_line(self._launch.isolation)

    @property
    def pid(self) -> int | None:
        """The worker's pid (also its process group id), or None once closed."""
        proc = self._res.proc
        return proc.pid if proc is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    # --- running -------------------------------------------------------------------------------

    def run(
        self,
        code: str,
        *,
        timeout: float | None = None,
        on_output: Callable[[str, str], None] | None = None,
    ) -> RunResult:
        """Run one cell; ``on_output(stream, text)`` gets output while it runs."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if timeout is None:
            limit = self.timeout
        else:
            positive("timeout", timeout)
            limit = float(timeout)
        with self._lock:
            if self._closed:
                raise SandboxError("this sandbox session is closed")
            if self._res.fork_generation != _fork_generation[0]:
                raise SandboxError("this sandbox session belongs to the process that created it (used after fork)")
            return self._run_locked(code, limit, on_output)

    def stream(self, code: str, *, timeout: float | None = None) -> Iterator[OutputChunk | RunResult]:
        """Yield ``OutputChunk(stream, text)`` while the cell runs, then its ``RunResult``."""
        items: queue.SimpleQueue[OutputChunk | RunResult | BaseException] = queue.SimpleQueue()

        def work() -> None:
            try:
                items.put(self.run(code, timeout=timeout, on_output=lambda s, t: items.put(OutputChunk(s, t))))
            except BaseException as e:
                items.put(e)

        threading.Thread(target=work, name="codeloop-sandbox-stream", daemon=True).start()
        while True:
            item = items.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, RunResult):
                return

    def restart(self) -> None:
        """Throw the interpreter state away and start a fresh worker (files are kept)."""
        with self._lock:
            if self._closed:
                raise SandboxError("this sandbox session is closed")
            self._replace_worker()

    def _run_locked(self, code: str, limit: float, on_output: Callable[[str, str], None] | None) -> RunResult:
        start = time.monotonic()
        cell = self._cell + 1
        nonce = self._nonces.next()
        try:
            frame = encode_run_request(nonce, code, cell, self._limits)
        except ValueError as e:  # too big to send: refused before the worker sees it, nothing lost
            raise SandboxError(f"cannot run this cell: {e}") from e
        self._cell = cell
        notes: list[str] = []
        if self._pending_notes:
            notes, self._pending_notes = self._pending_notes, []
        restarted = False
        proc = self._res.proc
        died, dropped = (True, None) if proc is None else before_request(proc)
        if dropped:
            notes.extend(
                f"dropped {size} bytes of {stream} written after the previous cell had finished "
                "(by a thread or process it left running): they belong to no open cell"
                for stream, size in dropped.items()
            )
        if proc is None or died:
            why = "could not be started" if proc is None else proc_exit_text(proc)
            self._replace_worker()
            restarted = True
            notes.append(f"the worker {why} since the last call; {STATE_LOST}")
            proc = self._res.proc
            assert proc is not None
        capture = Capture(self.max_output, self.output_hard_limit, on_output)
        outcome = exchange(proc, frame, nonce, start + limit, capture)
        result = RunResult(RunStatus.OK, cell=cell, notes=notes, restarted=restarted)
        if outcome.ending is Ending.REPLY and outcome.reply is not None:
            try:
                self._apply_reply(result, outcome.reply)
            except ProtocolError as e:
                outcome = Exchanged(Ending.PROTOCOL, detail=str(e), forged=outcome.forged)
        if outcome.ending is not Ending.REPLY:
            self._apply_failure(result, outcome, limit, capture)
        elif result.status is RunStatus.MEMORY:
            self._stop_and_replace(result, "the cell ran out of memory", capture)
        elif self._pending_restart is not None:
            why, self._pending_restart = self._pending_restart, None
            self._stop_and_replace(result, f"the cell exhausted the session's resources ({why})", capture, quiet=True)
        if not self._mpl_requested and _USES_MATPLOTLIB.search(code):
            # The host decides from the cell it was given, never from what the worker says.
            self._mpl_requested = True
            mplcache.request_build(self._template.python)
        if outcome.forged:
            result.notes.append(f"ignored {outcome.forged} reply frame(s) without this request's nonce")
        if capture.callback_error is not None:
            result.notes.append(f"on_output raised {capture.callback_error!r}; later output was not delivered")
        if capture.buffers:
            result.stdout = capture.text("stdout")
            result.stderr = capture.text("stderr") + result.stderr
            result.truncated = capture.truncated
        result.duration = time.monotonic() - start
        if self._refill_owed:
            self._refill_pool()
        return result

    def _apply_reply(self, result: RunResult, reply: dict[str, Any]) -> None:
        """Copy a worker reply into the result, checking its shape and re-applying the session's
        limits (a worker is not trusted: code in it can write reply frames of its own)."""
        try:
            result.status = _REPLY_STATUS[reply["status"]]
            if len(reply) == 2:  # status and id: the usual quiet cell
                return
            value = reply.get("value")
            if value is not None:
                result.value = _bounded(_clean(value), self.max_repr, "repr")
            error = reply.get("error")
            if error is not None:
                result.error = ErrorInfo(
                    _bounded(_clean(error["ename"]), 200, "name"),
                    _bounded(_clean(error["evalue"]), self.max_output, "message"),
                    _bounded(_clean(error["traceback"]), self.max_output, "traceback"),
                )
            if "figures" in reply:
                figures = list(reply["figures"])
                if len(figures) > self.max_figures:
                    result.notes.append(f"{len(figures) - self.max_figures} more figures dropped (limit {self.max_figures})")
                result.figures = [binascii.a2b_base64(str(png)) for png in figures[: self.max_figures]]
            if "files" in reply:
                files = list(reply["files"])
                if len(files) > self.max_files:
                    result.notes.append(f"{len(files) - self.max_files} more changed files not listed (limit {self.max_files})")
                result.files = [_bounded(_display_path(path), 4096, "name") for path in files[: self.max_files]]
            if "notes" in reply:
                result.notes.extend(_bounded(_clean(note), 2000, "note") for note in list(reply["notes"])[:_MAX_NOTES])
            exhausted = reply.get("exhausted")
            if exhausted is not None:  # the worker ran out of threads/processes/memory: start clean
                self._pending_restart = _bounded(_clean(exhausted), 300, "reason")
        except (KeyError, TypeError, ValueError, binascii.Error, RecursionError, MemoryError) as e:
            raise ProtocolError(f"malformed reply from the worker: {e!r}") from e

    def _apply_failure(self, result: RunResult, outcome: Exchanged, limit: float, sink: Callable[[int, bytes], None]) -> None:
        proc = self._res.proc
        if outcome.ending is Ending.TIMEOUT:
            result.status = RunStatus.TIMEOUT
            self._stop_and_replace(result, f"the cell ran past its {limit:g} s time limit and was stopped", sink)
        elif outcome.ending is Ending.OUTPUT_LIMIT:
            result.status = RunStatus.OUTPUT_LIMIT
            self._stop_and_replace(
                result, f"the cell wrote more than {self.output_hard_limit} bytes of output and was stopped", sink
            )
        elif outcome.ending is Ending.PROTOCOL:
            result.status = RunStatus.CRASHED
            self._stop_and_replace(result, f"the worker broke the protocol ({outcome.detail})", sink)
        else:
            assert proc is not None
            proc.wait_exit(1.0, sink)  # let it finish dying by itself, so its own exit status is reported
            proc.stop(self.stop_grace, sink)  # it may still run (closed its reply pipe): make sure
            if not proc.ready:  # it died before it could take a request: not the cell's doing
                self._not_started(proc, sink)
            memory = proc.killed_from_outside()
            result.status = RunStatus.MEMORY if memory else RunStatus.CRASHED
            why = proc_exit_text(proc)
            if memory:
                why += " (the kernel's out-of-memory killer does this when memory runs out)"
            self._stop_and_replace(result, f"the worker {why}", sink)

    def _not_started(self, proc: WorkerProcess, sink: Callable[[int, bytes], None]) -> None:
        """Raise SandboxError for a worker that died before it was ready, with what it printed."""
        said = ""
        if isinstance(sink, Capture):
            said = (sink.text("stderr") + sink.text("stdout")).strip()
        detail = f": {said[-1500:]}" if said else ""
        raise SandboxError(
            f"the sandbox worker could not start ({proc_exit_text(proc)}; interpreter "
            f"{self._template.python}){detail}"
        )

    def _stop_and_replace(
        self, result: RunResult, why: str, sink: Callable[[int, bytes], None], *, quiet: bool = False
    ) -> None:
        """Stop the worker and start a fresh one; ``quiet`` keeps the notice out of stderr (the
        cell's own error already tells the story), in ``notes`` and ``restarted`` only."""
        proc = self._res.proc
        if proc is not None:
            proc.stop(self.stop_grace, sink)
        if self._closed:
            result.notes.append(f"{why}; the session was closed meanwhile")
            result.stderr += f"\n[codeloop: {why}; the session is closed]\n"
            return
        try:
            self._replace_worker()
        except SandboxError as e:
            self._pending_notes.append(f"restarting the worker failed: {e}")
        result.restarted = True
        result.notes.append(f"{why}; {STATE_LOST}")
        if not quiet:
            result.stderr += f"\n[codeloop: {why}; {STATE_LOST}]\n"

    def _replace_worker(self) -> None:
        """Stop the current worker (if any) and start a fresh one in the same directory.

        The new worker runs as the same session uid (the lease is the session's), so the directory
        is never handed over again. Any failure is a SandboxError."""
        try:
            old = self._res.proc
            if old is not None:
                self._res.proc = None
                try:
                    old.stop(self.stop_grace)
                finally:
                    old.close()
            worker = start_worker(self._template, self._res.session_dir, uid_lease=self._res.uid_lease)
        except SandboxError:
            raise
        except Exception as e:
            raise SandboxError(f"restarting the sandbox worker failed: {e!r}") from e
        if worker.uid_lease is not None:
            if self._res.uid_lease is None:
                self._res.uid_lease = worker.uid_lease  # the first worker with a uid: the session holds it now
            else:
                worker.uid_lease.release(sweep=False)  # start_worker's extra hold: the session holds one already
        self._res.proc = worker.proc
        self._launch = worker.launch

    # --- closing -------------------------------------------------------------------------------

    def _refill_pool(self) -> None:
        if self._refill_owed:
            self._refill_owed = False
            POOL.refill_in_background(self.config)

    def close(self) -> None:
        """Stop the worker's whole process group and delete the session directory. Idempotent.

        Raises SandboxError if something could not be cleaned up (after doing all it could)."""
        if self._closed:
            return
        self._closed = True
        self._refill_pool()
        if not self._lock.acquire(blocking=False):
            proc = self._res.proc  # a run is in flight in another thread: cut it short
            if proc is not None:
                proc.signal_group(signal.SIGKILL)
            self._lock.acquire()
        try:
            if self._finalizer.detach() is not None:  # releases once: stop, close fds, free the uid, remove the directory
                self._res.release(0.05)
        finally:
            self._lock.release()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pid={self.pid}"
        return f"<Sandbox {state} workdir={str(self.workdir)!r} timeout={self.timeout:g}>"


def proc_exit_text(proc: WorkerProcess) -> str:
    """'exited with code 3' / 'was killed by SIGSEGV' for a worker that has exited."""
    if not proc.reaped:
        proc.signal_group(signal.SIGKILL, record=False)  # it has exited: clean its group before the pid is freed
        proc.reap()
    text = proc.describe_exit()
    return f"was {text}" if text.startswith("killed") else text
