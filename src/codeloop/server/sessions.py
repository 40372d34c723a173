"""Live sandbox sessions of a shared server: per-owner, capped, reaped when idle, all closed at exit.

Nothing here knows HTTP or MCP: the faces call ``create``/``run``/``delete`` with an *owner*
(the hashed token of the caller) and this registry makes sure one owner never reaches another's
sessions, the number of live sessions stays under the cap, and idle ones are closed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codeloop.errors import CodeloopError, ConfigError
from codeloop.sandbox import RunResult, Sandbox

__all__ = ["LiveSession", "SessionLimitReached", "SessionOptions", "SessionRegistry", "UnknownSession"]


class UnknownSession(CodeloopError):
    """No such session for this caller (never created, deleted, reaped, or another owner's)."""


class SessionLimitReached(CodeloopError):
    """The server already holds as many live sessions as it allows."""


@dataclass(frozen=True)
class SessionOptions:
    """What a client may choose for a session, checked against the server's ceilings."""

    timeout: float = 30.0
    memory_mb: int = 1024
    network: bool = False

    def checked(self, *, max_timeout: float, max_memory_mb: int, allow_network: bool) -> SessionOptions:
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not self.timeout > 0
        ):
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.timeout > max_timeout:
            raise ConfigError(f"timeout {self.timeout:g} s is above this server's limit of {max_timeout:g} s")
        if isinstance(self.memory_mb, bool) or not isinstance(self.memory_mb, int) or self.memory_mb < 64:
            raise ConfigError(f"memory_mb must be an integer of at least 64, got {self.memory_mb!r}")
        if self.memory_mb > max_memory_mb:
            raise ConfigError(f"memory_mb {self.memory_mb} is above this server's limit of {max_memory_mb}")
        if self.network and not allow_network:
            raise ConfigError(
                "this server does not allow sessions with network access (start it with --allow-network)"
            )
        return self


@dataclass
class LiveSession:
    """One client's sandbox session and its bookkeeping."""

    id: str
    owner: str
    options: SessionOptions
    sandbox: Any  # a Sandbox (or anything with run/close)
    created_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    runs: int = 0
    busy: int = 0  # runs in flight: a busy session is never reaped

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "idle_s": round(time.monotonic() - self.last_used, 3) if not self.busy else 0.0,
            "runs": self.runs,
            "busy": bool(self.busy),
            "timeout": self.options.timeout,
            "memory_mb": self.options.memory_mb,
            "network": self.options.network,
            "isolation": dict(getattr(self.sandbox, "isolation", {}) or {}),
        }


SandboxFactory = Callable[[SessionOptions], Any]


def _default_factory(options: SessionOptions) -> Sandbox:
    return Sandbox(timeout=options.timeout, memory_mb=options.memory_mb, network=options.network)


class SessionRegistry:
    """Thread-safe map of live sessions. Blocking calls (``create``, ``run``) belong in a worker thread."""

    def __init__(
        self,
        *,
        max_sessions: int = 64,
        max_per_owner: int | None = None,
        idle_timeout: float = 600.0,
        factory: SandboxFactory = _default_factory,
    ) -> None:
        if max_sessions < 1:
            raise ConfigError(f"max_sessions must be at least 1, got {max_sessions}")
        if not idle_timeout > 0:
            raise ConfigError(f"idle_timeout must be positive, got {idle_timeout}")
        self.max_sessions = max_sessions
        self.max_per_owner = max_per_owner  # None: one owner may take them all
        self.idle_timeout = float(idle_timeout)
        self._factory = factory
        self._lock = threading.Lock()
        self._sessions: dict[str, LiveSession] = {}
        self._reserved = 0  # slots taken by sessions being started
        self._reserving: dict[str, int] = {}  # the same, per owner
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def count(self, owner: str) -> int:
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.owner == owner)

    def owned_by(self, owner: str) -> list[LiveSession]:
        with self._lock:
            return [s for s in self._sessions.values() if s.owner == owner]

    def create(self, owner: str, options: SessionOptions) -> LiveSession:
        """Start a sandbox for ``owner``; SessionLimitReached when the server is full."""
        with self._lock:
            if self._closed:
                raise SessionLimitReached("the server is shutting down")
            if len(self._sessions) + self._reserved >= self.max_sessions:
                raise SessionLimitReached(
                    f"this server already holds {self.max_sessions} live sessions: delete one or retry later"
                )
            if self.max_per_owner is not None:
                mine = sum(1 for s in self._sessions.values() if s.owner == owner) + self._reserving.get(
                    owner, 0
                )
                if mine >= self.max_per_owner:
                    raise SessionLimitReached(
                        f"you already hold {self.max_per_owner} live sessions, the most one token may: delete one"
                    )
            self._reserved += 1
            self._reserving[owner] = self._reserving.get(owner, 0) + 1
        try:
            sandbox = self._factory(options)
        finally:
            with self._lock:
                self._reserved -= 1
                self._reserving[owner] -= 1
        session = LiveSession(secrets.token_urlsafe(12), owner, options, sandbox)
        with self._lock:
            if not self._closed:
                self._sessions[session.id] = session
                return session
        sandbox.close()  # shut down while it started
        raise SessionLimitReached("the server is shutting down")

    def get(self, owner: str, session_id: str) -> LiveSession:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or not secrets.compare_digest(session.owner, owner):
                raise UnknownSession(
                    f"no session {session_id!r} (deleted, reaped after idling, or never created)"
                )
            return session

    def run(self, owner: str, session_id: str, code: str, timeout: float | None = None) -> RunResult:
        """Run one cell in the caller's session (blocks while it runs)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or not secrets.compare_digest(session.owner, owner):
                raise UnknownSession(
                    f"no session {session_id!r} (deleted, reaped after idling, or never created)"
                )
            session.busy += 1
        try:
            result: RunResult = session.sandbox.run(code, timeout=timeout)
            return result
        finally:
            with self._lock:
                session.busy -= 1
                session.runs += 1
                session.last_used = time.monotonic()

    def delete(self, owner: str, session_id: str) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or not secrets.compare_digest(session.owner, owner):
                raise UnknownSession(
                    f"no session {session_id!r} (deleted, reaped after idling, or never created)"
                )
            del self._sessions[session_id]
        session.sandbox.close()

    def reap(self, now: float | None = None) -> list[str]:
        """Close sessions idle for longer than ``idle_timeout``; return their ids."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                s for s in self._sessions.values() if not s.busy and now - s.last_used > self.idle_timeout
            ]
            for s in idle:
                del self._sessions[s.id]
        for s in idle:
            s.sandbox.close()
        return [s.id for s in idle]

    def close_all(self) -> int:
        """Close every session (a run in flight is cut short) and refuse new ones; return how many."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.sandbox.close()
        return len(sessions)
