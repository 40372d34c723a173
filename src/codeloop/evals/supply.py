"""Fresh sessions on tap: opened ahead of need, closed behind the caller's back.

Opening a sandbox session (taking a pre-started worker, jailing it) and closing one (stopping
the process group, removing its directory) cost more than checking a HumanEval sample. A check
only needs the session in between, so a background thread keeps a few sessions open and
untouched, and used sessions are closed by other threads while the next check runs. Every
session is still used for exactly one sample: nothing runs in it before the sample's own cells.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType

from codeloop.evals.sessions import Session, SessionFactory

__all__ = ["SessionSupply"]

_Opened = tuple[AbstractContextManager[Session], Session]


class SessionSupply:
    """A SessionFactory (call it for a fresh session) that opens ``ahead`` sessions in advance.

    Use it as a context manager; on exit the sessions opened but not used are closed and the
    pending closes are waited for.
    """

    def __init__(self, open_session: SessionFactory, ahead: int, openers: int = 2, closers: int = 2) -> None:
        self._open = open_session
        self._ready: queue.Queue[_Opened | BaseException] = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._closers = ThreadPoolExecutor(max_workers=max(1, closers), thread_name_prefix="codeloop-close")
        # Opening is mostly waiting for a worker to boot, so a few openers keep the queue full.
        self._openers = [
            threading.Thread(target=self._keep_open, name=f"codeloop-open-{i}", daemon=True)
            for i in range(max(1, openers))
        ]
        for thread in self._openers:
            thread.start()

    def _open_one(self) -> _Opened:
        manager = self._open()
        return manager, manager.__enter__()

    def _keep_open(self) -> None:
        while not self._stop.is_set():
            try:
                item: _Opened | BaseException = self._open_one()
            except BaseException as e:  # handed to the taker, who raises it in its own thread
                item = e
            while not self._stop.is_set():
                try:
                    self._ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            else:
                if not isinstance(item, BaseException):
                    self._close(item[0])
                return
            if isinstance(item, BaseException):
                return  # the sandbox cannot open sessions: takers open their own and see why

    @staticmethod
    def _close(manager: AbstractContextManager[Session]) -> None:
        manager.__exit__(None, None, None)

    def _take(self) -> _Opened:
        try:
            alive = any(t.is_alive() for t in self._openers)
            item = self._ready.get(timeout=5.0) if alive else self._ready.get_nowait()
        except queue.Empty:
            return self._open_one()
        if isinstance(item, BaseException):
            return self._open_one()
        return item

    @contextmanager
    def _session(self) -> Iterator[Session]:
        manager, session = self._take()
        try:
            yield session
        finally:
            self._closers.submit(self._close, manager)

    def __call__(self) -> AbstractContextManager[Session]:
        return self._session()

    def close(self) -> None:
        self._stop.set()
        for thread in self._openers:
            thread.join()
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, BaseException):
                self._closers.submit(self._close, item[0])
        self._closers.shutdown(wait=True)

    def __enter__(self) -> SessionSupply:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
