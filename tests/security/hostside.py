"""Host-side witnesses for the hostile-code suite.

Every verdict of the suite comes from here, never from what the sandboxed code reports: /proc
as the host sees it, listeners the test itself runs on 127.0.0.1, files on the host's disk.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from codeloop import Sandbox
from codeloop.sandbox.jail.paths import reachable_by_others
from local_servers import HttpServerThread

PROC = Path("/proc")

#: On the simulated degraded host (no namespaces) a root caller's worker must run as a session uid,
#: which must reach the interpreter: the suite's own may live under /root (pyenv), so sessions there
#: use the system's (``Sandbox(**SANDBOX_PYTHON)``). Elsewhere: the default interpreter.
DEGRADED = os.environ.get("CODELOOP_DEGRADED_HOST") == "1"
SANDBOX_PYTHON: dict[str, str] = (
    {"python": "/usr/bin/python3"} if DEGRADED and reachable_by_others("/usr/bin/python3", os.X_OK) else {}
)


# --- processes ----------------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict ({} once the process is gone)."""
    text = _read(PROC / str(pid) / "status")
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    state = status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def parents() -> dict[int, int]:
    """pid -> ppid for every process on the host."""
    result: dict[int, int] = {}
    for pid in pids():
        stat = _read(PROC / str(pid) / "stat")
        if stat:
            result[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    return result


def descendants(root: int) -> set[int]:
    tree = parents()
    found = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in tree.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    found.discard(root)
    return found


def with_cmdline(token: str) -> list[int]:
    """Processes whose command line contains ``token`` (the test put it there)."""
    found = []
    for pid in pids():
        raw = _read(PROC / str(pid) / "cmdline")
        if raw and token in raw and pid != os.getpid():
            found.append(pid)
    return found


def of_uid(uid: int) -> list[int]:
    """Processes whose real uid is ``uid``."""
    return [pid for pid in pids() if status(pid).get("Uid", "").split()[:1] == [str(uid)]]


def _is_worker(pid: int) -> bool:
    # bubblewrap's own processes carry the worker's path in their command line too: skip them.
    return (_read(PROC / str(pid) / "comm") or "").strip() != "bwrap" and "worker.py" in (
        _read(PROC / str(pid) / "cmdline") or ""
    )


def find_worker(top: int) -> int | None:
    """The Python worker under session pid ``top`` (itself, or its descendant under bubblewrap)."""
    if _is_worker(top):
        return top
    for pid in sorted(descendants(top)):
        if _is_worker(pid):
            return pid
    return None


def worker_pid(sb: Sandbox, wait: float = 5.0) -> int:
    """The worker of a session, waiting for it to appear (a fresh session is still starting)."""
    deadline = time.monotonic() + wait
    while True:
        top = sb.pid
        found = find_worker(top) if top is not None else None
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no worker process under pid {top}")
        time.sleep(0.01)


def session_uid(sb: Sandbox) -> int:
    return int(status(worker_pid(sb))["Uid"].split()[0])


def session_processes(sb: Sandbox, uid: int | None = None) -> set[int]:
    """Every live process of a session: descendants of its pid and, with a session uid, that uid's.

    Never waits: while the session restarts its worker this may miss processes.
    """
    top = sb.pid
    if top is None:
        return set()
    found = descendants(top) | {top}
    if uid is None:
        worker = find_worker(top)
        uid = int(status(worker).get("Uid", "0").split()[0]) if worker is not None else 0
    if uid not in (0, os.getuid()):
        found |= set(of_uid(uid))
    return {p for p in found if alive(p)}


class Sampler:
    """Samples a measure of the host's view in a thread (e.g. a session's process count)."""

    def __init__(self, measure: Callable[[], int], every: float = 0.01) -> None:
        self.measure = measure
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, self.measure())
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_kb(pid_list: set[int] | list[int]) -> int:
    total = 0
    for pid in pid_list:
        value = status(pid).get("VmRSS", "0 kB").split()[0]
        total += int(value) if value.isdigit() else 0
    return total


# --- listeners ----------------------------------------------------------------------------------


class TcpListener:
    """A TCP listener on 127.0.0.1 that records every connection attempt it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class UdpListener:
    """A UDP socket on 127.0.0.1 that records every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def datagrams(self, wait: float = 0.2) -> int:
        self.sock.settimeout(wait)
        count = 0
        while True:
            try:
                self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                return count
            count += 1

    def close(self) -> None:
        self.sock.close()


class HttpListener:
    """An HTTP server on 127.0.0.1 that records every request path."""

    def __init__(self) -> None:
        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"host data")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.requests = requests
        self.server = HttpServerThread(Handler, poll_interval=0.05)
        self.port = self.server.port

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def listening(kind: type[TcpListener] | type[UdpListener] | type[HttpListener]) -> Iterator[object]:
    listener = kind()
    try:
        yield listener
    finally:
        listener.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
