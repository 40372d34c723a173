"""A session's settings, validated once: ``SandboxConfig`` (frozen, hashable; also the pool's key).

``Sandbox(...)`` keeps its keyword signature and builds one of these; every check of a number is
the one ``positive`` (or ``non_negative``) here, also used by the jail's policy and ``run(timeout=)``.
It imports only errors, the layer registry (``layers.py``, which names every layer) and the launch types.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from codeloop.errors import ConfigError
from codeloop.sandbox.launch_types import WORKER_SCRIPT, LaunchSpec
from codeloop.sandbox.layers import names, strict_layers

__all__ = [
    "LIMIT_NAMES",
    "SandboxConfig",
    "check_layer_names",
    "check_limits",
    "non_negative",
    "positive",
]

#: Limits a caller may set beyond memory_mb and cpu_seconds (``Sandbox(limits=...)``).
LIMIT_NAMES = ("file_size_mb", "open_files", "processes", "tmp_size_mb")


def positive(name: str, value: object, *, integer: bool = False, allow_none: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a positive number (an int with ``integer``); None
    passes with ``allow_none``. bool is never a number here."""
    if value is None and allow_none:
        return
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        raise ConfigError(f"{name} must be a positive {'integer' if integer else 'number'}, not {value!r}")


def non_negative(name: str, value: object) -> None:
    """Raise ConfigError unless ``value`` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, not {value!r}")


def check_layer_names(wanted_names: Iterable[str], known: Iterable[str] | None = None) -> list[str]:
    """The names as a list; a name that is no registered layer raises ConfigError listing the valid ones."""
    known_set = set(names() if known is None else known)
    wanted = list(wanted_names) if not isinstance(wanted_names, str) else [wanted_names]
    unknown = [n for n in wanted if n not in known_set]
    if unknown:
        raise ConfigError(f"unknown isolation layer(s) {unknown}; known layers: {sorted(known_set)}")
    return wanted


def check_limits(limits: Mapping[str, int]) -> Mapping[str, int]:
    """The limits unchanged; an unknown name or a non-positive value raises ConfigError."""
    if not isinstance(limits, Mapping):
        raise ConfigError(f"limits must be a mapping of {LIMIT_NAMES} to positive integers, got {limits!r}")
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise ConfigError(f"unknown sandbox limit {name!r}; known limits: {', '.join(LIMIT_NAMES)}")
        positive(name, value, integer=True)
    return limits


def _env(extra: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    items = extra.items() if isinstance(extra, Mapping) else (extra or ())
    env: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key:
            raise ConfigError(f"sandbox env entries must be str -> str without '=' in names: {key!r}")
        env[key] = value
    return tuple(sorted(env.items()))


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a ``Sandbox`` is asked for, checked and normalised (mappings become sorted tuples,
    ``strict`` is folded into ``require``, the interpreter and the output hard cap get their defaults).
    """

    timeout: float = 10.0
    memory_mb: int | None = 1024
    network: bool = False
    cpu_seconds: int | None = None
    max_output: int = 1 << 20
    output_hard_limit: int | None = None
    max_repr: int = 20_000
    max_figures: int = 20
    max_files: int = 200
    env: tuple[tuple[str, str], ...] = ()
    root: Path | None = None
    python: str | None = None
    strict: bool = False
    stop_grace: float = 0.25
    #: jail: layers that must be active (else SandboxUnavailable), ``strict``'s included
    require: tuple[str, ...] = ()
    #: jail: False starts the plain worker with no jail layers (benchmarks, debugging)
    jail: bool = True
    #: jail: file_size_mb, open_files, processes, tmp_size_mb
    limits: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        positive("timeout", self.timeout)
        positive("memory_mb", self.memory_mb, allow_none=True)
        positive("cpu_seconds", self.cpu_seconds, allow_none=True)
        positive("stop_grace", self.stop_grace)
        for name in ("max_repr", "max_figures", "max_files"):
            non_negative(name, getattr(self, name))
        if isinstance(self.max_output, bool) or not isinstance(self.max_output, int) or self.max_output < 64:
            raise ConfigError(f"max_output must be an integer of at least 64 bytes, not {self.max_output!r}")
        hard = self.output_hard_limit if self.output_hard_limit is not None else max(64 * self.max_output, 64 << 20)
        if isinstance(hard, bool) or not isinstance(hard, int) or hard < self.max_output:
            raise ConfigError(f"output_hard_limit must be an integer >= max_output, not {hard!r}")
        python = self.python or sys.executable
        if not python or not os.access(python, os.X_OK):
            raise ConfigError(f"no usable Python interpreter for the sandbox: {python!r}")
        root = Path(self.root) if self.root is not None else None
        if root is not None and not root.is_dir():
            raise ConfigError(f"sandbox root {root} is not a directory")
        limits = self.limits if isinstance(self.limits, Mapping) else dict(self.limits)
        require = check_layer_names([*self.require, *(strict_layers(bool(self.network)) if self.strict else ())])
        normal = {
            "timeout": float(self.timeout),
            "stop_grace": float(self.stop_grace),
            "output_hard_limit": hard,
            "python": python,
            "root": root,
            "network": bool(self.network),
            "jail": bool(self.jail),
            "strict": bool(self.strict),
            "env": _env(self.env),
            "require": tuple(dict.fromkeys(require)),
            "limits": tuple(sorted(check_limits(limits).items())),
        }
        for key, value in normal.items():
            object.__setattr__(self, key, value)

    @property
    def pool_key(self) -> SandboxConfig:
        """The config with what only the session uses reset: workers whose keys are equal are
        interchangeable (interpreter, limits, network, env, layers, root)."""
        return dataclasses.replace(
            self,
            timeout=10.0,
            max_output=1 << 20,
            output_hard_limit=None,
            max_repr=20_000,
            max_figures=20,
            max_files=200,
            stop_grace=0.25,
            strict=False,  # folded into require already
        )

    def launch_spec(self, session_dir: Path = Path()) -> LaunchSpec:
        """What the launcher needs to start a worker for this config."""
        assert self.python is not None  # set by __post_init__
        return LaunchSpec(
            python=self.python,
            worker=WORKER_SCRIPT,
            session_dir=session_dir,
            memory_mb=self.memory_mb,
            cpu_seconds=self.cpu_seconds,
            network=self.network,
            env=dict(self.env),
            strict=self.strict,
            require=self.require,
            jail=self.jail,
            limits=dict(self.limits),
        )
