"""Reaching a Ray cluster, and starting a small private one on this machine (tests, benchmarks).

``connect(address)`` joins an existing cluster as a driver. Ray is imported here only, late, so
codeloop without the ``ray`` extra never pays for it and says how to install it when asked.

:class:`LocalCluster` runs ``ray start --head --block`` bound to 127.0.0.1, in its own process
group and its own temporary directory, with token authentication on (a fresh random token,
handed to the cluster and the driver through the environment, never written to ``~/.ray``), a
capped object store and no dashboard. Stopping it signals only that process group: the head's
``--block`` process drains and stops everything it started, and whatever of the group is still
there after a grace period is killed. Nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from codeloop.scale.errors import ScaleError

__all__ = ["LocalCluster", "connect", "import_ray", "node_env"]

INSTALL_HINT = "pip install 'codeloop[ray]'"

# Ray clusters bind the machine's outward address unless this says "not a multi-machine cluster"
# (then everything listens on 127.0.0.1): a private test cluster must not be reachable from outside.
_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def import_ray() -> ModuleType:
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ScaleError(f"running on a Ray cluster needs the ray extra: {INSTALL_HINT}") from e
    return ray


def connect(address: str, *, namespace: str = "codeloop") -> ModuleType:
    """Join the Ray cluster at ``address`` (``HOST:PORT``, ``auto``, or ``ray://HOST:PORT``) as a driver.

    The cluster's token (``RAY_AUTH_MODE=token``) is read by Ray from ``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, as for any Ray client.
    """
    if not address or not address.strip():
        raise ScaleError("--ray needs the address of a Ray cluster, e.g. --ray 127.0.0.1:6379 or --ray auto")
    ray = import_ray()
    if ray.is_initialized():
        return ray
    _probe(address.strip())
    _check_loopback_setting()
    _reload_auth_settings()
    try:
        ray.init(
            address=address.strip(),
            namespace=namespace,
            log_to_driver=False,
            logging_level="WARNING",
            configure_logging=True,
        )
    except Exception as e:  # Ray raises ConnectionError, RuntimeError, AuthenticationError, ValueError...
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = (
            " (is a cluster running there, and, if it uses token authentication, do RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH give its token, as 'ray get-auth-token' prints it on the head?)"
        )
        raise ScaleError(f"cannot join the Ray cluster at {address}: {text}{hint}") from e
    return ray


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail at once when nothing listens at ``HOST:PORT`` (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", a ray:// client address: left to Ray
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ScaleError(f"cannot join the Ray cluster at {address}: nothing answers there ({e.strerror or e})") from e


def _check_loopback_setting() -> None:
    """Refuse to go on when Ray read ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` before it was set.

    Ray reads it once, when imported; without it a driver rewrites ``127.0.0.1`` to the machine's
    outward address, where a loopback-only cluster does not listen, and waits for minutes.
    """
    import importlib

    key = next(iter(_LOOPBACK_ENV))
    if os.environ.get(key) != "0":
        return
    constants = importlib.import_module("ray._private.ray_constants")
    if getattr(constants, "ENABLE_RAY_CLUSTER", False):
        raise ScaleError(f"ray was imported before {key}=0 was set: set it before importing ray (or in the environment)")


def _reload_auth_settings() -> None:
    """Make Ray read ``RAY_AUTH_MODE`` and the token again: it caches them when first imported.

    A program that imported ray before setting them (a test that starts its own cluster, say)
    would otherwise connect without the token and be refused. Ray does the same itself when it
    turns token authentication on for a local cluster.
    """
    import importlib

    raylet = importlib.import_module("ray._raylet")
    config, loader = getattr(raylet, "Config", None), getattr(raylet, "AuthenticationTokenLoader", None)
    if config is None or loader is None:  # another Ray version: it reads them at ray.init
        return
    config.initialize("")
    loader.instance().reset_cache()


def node_env(token: str | None) -> dict[str, str]:
    """Environment of a loopback-only node with token authentication (the token may be None: off)."""
    env = dict(_LOOPBACK_ENV)
    if token is None:
        env["RAY_AUTH_MODE"] = "disabled"
    else:
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = token
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_executable() -> str:
    here = Path(sys.executable).with_name("ray")
    if here.is_file():
        return str(here)
    found = shutil.which("ray")
    if found is None:
        raise ScaleError(f"the 'ray' command is not installed: {INSTALL_HINT}")
    return found


class LocalCluster:
    """A one-node Ray cluster on 127.0.0.1 that this object starts and stops.

    >>> with LocalCluster(num_cpus=2) as cluster:          # doctest: +SKIP
    ...     with cluster.driver_env():
    ...         ray = connect(cluster.address)
    """

    def __init__(
        self,
        *,
        num_cpus: int = 2,
        object_store_mb: int = 128,
        token: str | None = "generate",
        start_timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb
        self.token = secrets.token_hex(24) if token == "generate" else token
        self.start_timeout = start_timeout
        self.extra_env = dict(env or {})
        self.port = 0
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None
        self.log_path: Path | None = None

    # -- the environment a driver or a node of this cluster needs --------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Variables a driver (or a subprocess such as ``codeloop eval --ray``) needs to join."""
        return node_env(self.token)

    @contextmanager
    def driver_env(self) -> Iterator[None]:
        """Set :attr:`env` in this process for the duration; enter it before importing ray.

        Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when it is imported and the token at
        ``ray.init`` (``connect`` makes it read the token again).
        """
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # -- start and stop --------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        if self.process is not None:
            raise ScaleError("this cluster is already started")
        # A short path: Ray's Unix sockets live under it and socket paths are limited to 107 bytes.
        self._tmp = tempfile.mkdtemp(prefix="clray-", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        args = [
            _ray_executable(),
            "start",
            "--head",
            "--block",
            f"--port={self.port}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
            "--include-dashboard=false",
            f"--dashboard-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--temp-dir={self._tmp}/t",
            "--disable-usage-stats",
        ]
        env = {**os.environ, **self.extra_env, **self.env}
        self.log_path = Path(self._tmp) / "head.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_started(self) -> None:
        assert self.process is not None and self.log_path is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ScaleError(f"ray start exited with status {self.process.returncode}: {self.log_tail()}")
            if b"Ray runtime started" in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise ScaleError(f"the Ray head did not start within {self.start_timeout:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    @property
    def pgid(self) -> int | None:
        """The process group of the head (``ray start`` leads it; Ray's workers make groups of their own)."""
        return None if self.process is None else self.process.pid

    def processes(self) -> list[int]:
        """Live processes of this cluster: the head's group, and every descendant of the head."""
        if self.process is None:
            return []
        root = self.process.pid
        parents: dict[int, int] = {}
        group: set[int] = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            stat = _stat(pid)
            if stat is None:
                continue
            parents[pid] = stat[0]
            if stat[1] == root:
                group.add(pid)
        found = set(group)
        if root in parents:
            found.add(root)
        children: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        todo, seen = [root], {root}
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    found.add(child)
                    todo.append(child)
        return sorted(found)

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is a live process this cluster started (so a test may signal it)."""
        return pid in self.processes()

    def stop(self, grace: float = 40.0) -> None:
        """SIGTERM the head (it drains and stops its processes), then SIGKILL whatever of them is left."""
        process = self.process
        if process is not None:
            started = {pid: _start_time(pid) for pid in self.processes()}  # before the head exits
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    process.kill()
            process.wait()
            deadline = time.monotonic() + 5.0
            while self._left(started) and time.monotonic() < deadline:
                time.sleep(0.1)
            for pid in self._left(started):
                try:
                    os.kill(pid, signal.SIGKILL)  # one of ours (same pid, same start time)
                except ProcessLookupError:
                    pass
            self._started_pids = started
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)  # the directory this object made
            self._tmp = None

    @staticmethod
    def _left(started: dict[int, int | None]) -> list[int]:
        return [pid for pid, when in started.items() if when is not None and _start_time(pid) == when]

    def leftovers(self) -> list[int]:
        """Processes of the stopped cluster still alive (should be none)."""
        return self._left(getattr(self, "_started_pids", {}))

    def __enter__(self) -> LocalCluster:
        return self.start() if self.process is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _stat(pid: int) -> tuple[int, int, int] | None:
    """``(ppid, pgid, start time)`` of a process from ``/proc/PID/stat``; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[2]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[2]


def describe_resources(ray: Any) -> dict[str, float]:
    """The cluster's total resources (``CPU``, ``memory``...), as Ray reports them."""
    return {str(k): float(v) for k, v in ray.cluster_resources().items()}
