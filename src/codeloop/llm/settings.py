"""Model settings, resolved as: explicit arguments, then environment variables, then the
``[model]`` and ``[aliases]`` tables of ``$CODELOOP_HOME/config.toml``, then defaults.

Example ``config.toml``::

    [model]
    default = "fast"          # a model name or alias
    n_ctx = 8192              # embedded context window (tokens)
    read_timeout = 300        # seconds a server may stay silent

    [aliases]
    fast = "smollm2-135m"
    gpt = "openai:gpt-4o-mini"
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from codeloop.config import load_config
from codeloop.errors import ConfigError

__all__ = [
    "ENV_MODEL",
    "EmbeddedSettings",
    "RemoteSettings",
    "configured_aliases",
    "configured_default",
    "model_table",
    "physical_cores",
]

ENV_MODEL = "CODELOOP_MODEL"
_ENV_INT = {"n_ctx": "CODELOOP_N_CTX", "n_threads": "CODELOOP_N_THREADS"}


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads don't speed up llama.cpp decoding)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        cpu = phys = core = None
        for line in [*Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines(), ""]:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "processor":
                cpu = int(value)
            elif key == "physical id":
                phys = value
            elif key == "core id":
                core = value
            elif not key and cpu is not None:
                if cpu in allowed:
                    cores.add((phys or "0", core if core is not None else str(cpu)))
                cpu = phys = core = None
    except (OSError, ValueError):
        cores = set()
    count = len(cores) or len(allowed) or 1
    return max(1, min(count, _cgroup_cpu_limit() or count))


def _cgroup_cpu_limit() -> int | None:
    """The CPU quota of a container (cgroup v2 ``cpu.max``), rounded up; None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def model_table(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``[model]`` table of the user config (empty when absent)."""
    config = load_config() if config is None else config
    table = config.get("model", {})
    if not isinstance(table, dict):
        raise ConfigError("config.toml: [model] must be a table")
    return table


def configured_aliases(config: Mapping[str, Any] | None = None) -> dict[str, str]:
    """User aliases from the ``[aliases]`` table: alias -> model name."""
    config = load_config() if config is None else config
    table = config.get("aliases", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) and v for v in table.values()):
        raise ConfigError('config.toml: [aliases] must map names to model names, e.g. fast = "smollm2-135m"')
    return {str(k).lower(): v for k, v in table.items()}


def configured_default(config: Mapping[str, Any] | None = None) -> str | None:
    """The default model the user chose: ``$CODELOOP_MODEL``, else ``[model] default``."""
    env = os.environ.get(ENV_MODEL, "").strip()
    if env:
        return env
    value = model_table(config).get("default")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"config.toml: [model] default must be a model name, got {value!r}")
    return value.strip() if isinstance(value, str) else None


def _typed(name: str, value: Any, kind: type, source: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
    elif kind is int:
        try:
            if not isinstance(value, bool):
                out = int(value)
                if out >= 0 and str(out) == str(value).strip():
                    return out
        except (TypeError, ValueError):
            pass
    elif kind is float:
        try:
            if not isinstance(value, bool) and float(value) > 0:
                return float(value)
        except (TypeError, ValueError):
            pass
    elif kind is str:
        if isinstance(value, str) and value.strip():
            return value.strip()
    want = {bool: "true or false", int: "a non-negative integer", float: "a positive number"}.get(
        kind, "a string"
    )
    raise ConfigError(f"{source}: {name} must be {want}, got {value!r}")


def _resolve(cls: type, overrides: Mapping[str, Any], config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Field values for ``cls`` from overrides > env > [model] table (unset fields keep defaults)."""
    table = model_table(config)
    hints = {"int": int, "float": float, "bool": bool}
    out: dict[str, Any] = {}
    known = {f.name for f in fields(cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(
            f"unknown model option(s) {', '.join(sorted(unknown))}: expected some of {sorted(known)}"
        )
    for f in fields(cls):
        kind = hints[str(f.type).split(" ")[0]]
        if overrides.get(f.name) is not None:
            out[f.name] = _typed(f.name, overrides[f.name], kind, "argument")
        elif f.name in _ENV_INT and os.environ.get(_ENV_INT[f.name]):
            out[f.name] = _typed(f.name, os.environ[_ENV_INT[f.name]], kind, f"${_ENV_INT[f.name]}")
        elif table.get(f.name) is not None and not (kind is bool and table[f.name] == "auto"):
            out[f.name] = _typed(f.name, table[f.name], kind, "config.toml [model]")
    return out


@dataclass(frozen=True)
class EmbeddedSettings:
    """How llama.cpp runs a local GGUF. Defaults are tuned for a small CPU-only machine."""

    n_ctx: int = 8192  # context window in tokens (KV cache: ~12 KiB/token for the 0.5B default)
    n_threads: int = 0  # the most threads; 0: one per physical core
    adaptive_threads: bool = True  # use fewer while other processes keep the cores busy
    n_batch: int = 512  # prompt tokens evaluated per step
    flash_attn: bool = False  # measured (bench --compare-flash-attn): prompts ~10% faster, decoding ~20% slower
    repack: bool | None = None  # llama.cpp weight repacking / AMX buffers; None: auto (see llama_runtime)

    def __post_init__(self) -> None:
        if self.n_ctx < 64:
            raise ConfigError(f"n_ctx must be at least 64 tokens, got {self.n_ctx}")
        if self.n_batch < 1:
            raise ConfigError(f"n_batch must be at least 1, got {self.n_batch}")

    @classmethod
    def resolve(cls, config: Mapping[str, Any] | None = None, **overrides: Any) -> EmbeddedSettings:
        values = _resolve(cls, overrides, config)
        settings = cls(**values)
        if settings.n_threads == 0:
            settings = cls(**{**values, "n_threads": physical_cores()})
        return settings


@dataclass(frozen=True)
class RemoteSettings:
    """How codeloop talks to an OpenAI-compatible server."""

    connect_timeout: float = 5.0  # seconds to open a connection
    read_timeout: float = 300.0  # seconds the server may stay silent (a whole reply when not streaming)
    max_retries: int = 2  # retries with exponential backoff on 429, 5xx and dropped connections

    @classmethod
    def resolve(cls, config: Mapping[str, Any] | None = None, **overrides: Any) -> RemoteSettings:
        values = _resolve(cls, overrides, config)
        return cls(**values)
