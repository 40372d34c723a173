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
        hint = ""
        if "auth" in type(e).__name__.lower() or "token" in str(e).lower():
            hint = (
                "; the cluster wants its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                "(or RAY_AUTH_TOKEN_PATH), as given by 'ray get-auth-token' on the head node"
            )
        raise ScaleError(f"cannot join the Ray cluster at {address}: {text}{hint}") from e
    return ray


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
        """Set :attr:`env` in this process for the duration (Ray reads it at ``ray.init``)."""
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
        """The process group every process of this cluster runs in (``ray start`` leads it)."""
        return None if self.process is None else self.process.pid

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is a live process of this cluster (in its process group)."""
        if self.pgid is None:
            return False
        try:
            return os.getpgid(pid) == self.pgid
        except ProcessLookupError:
            return False

    def processes(self) -> list[int]:
        """Live processes of this cluster's process group."""
        if self.pgid is None:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getpgid(int(entry)) == self.pgid:
                        found.append(int(entry))
                except (ProcessLookupError, PermissionError):
                    continue
        return found

    def stop(self, grace: float = 40.0) -> None:
        """SIGTERM the head (it drains and stops its processes), then SIGKILL what is left of the group."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            deadline = time.monotonic() + 5.0
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.processes():
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # our own group only
                except ProcessLookupError:
                    pass
            if process.poll() is None:
                process.kill()
            process.wait()
            while self.processes() and time.monotonic() < deadline + 5.0:
                time.sleep(0.1)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)  # the directory this object made
            self._tmp = None

    def __enter__(self) -> LocalCluster:
        return self.start() if self.process is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def describe_resources(ray: Any) -> dict[str, float]:
    """The cluster's total resources (``CPU``, ``memory``...), as Ray reports them."""
    return {str(k): float(v) for k, v in ray.cluster_resources().items()}
