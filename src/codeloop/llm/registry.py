"""``get_model``: turn a model name into a ready backend.

Names: a bundled model (``qwen-coder-0.5b``, ``smollm2-135m``, ``qwen-coder-1.5b``) or one of
their aliases, a user alias from ``[aliases]``, ``gguf:/path/model.gguf``, ``openai:MODEL``,
``ollama:MODEL``, ``lm:DIR`` (a small LM trained by ``codeloop lm train``), or any model name
together with ``base_url`` (a generic OpenAI-compatible server). No name means the configured
default, else the embedded Qwen2.5-Coder-0.5B.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.config import load_config
from codeloop.errors import ConfigError, ModelError
from codeloop.llm.adapters import choose_adapter, ran_spec, split_adapter
from codeloop.llm.assemble import prepare, require_installed
from codeloop.llm.base import Model
from codeloop.llm.catalog import BUNDLED, DEFAULT_MODEL, BundledModel, find_bundled
from codeloop.llm.settings import (
    EmbeddedSettings,
    RemoteSettings,
    configured_aliases,
    configured_default,
    model_table,
)

__all__ = [
    "OLLAMA_BASE_URL",
    "ModelCheck",
    "check_model",
    "default_model_name",
    "embedded_base",
    "get_model",
    "resolve_name",
]

OLLAMA_BASE_URL = "http://127.0.0.1:11434/v1"
_PREFIXES = ("gguf:", "openai:", "ollama:", "lm:")
_MAX_ALIAS_HOPS = 10


def default_model_name(config: dict[str, Any] | None = None) -> str:
    """The model used when none is named: ``$CODELOOP_MODEL``, ``[model] default``, else the bundled default."""
    return configured_default(config) or DEFAULT_MODEL


def resolve_name(name: str, config: dict[str, Any] | None = None) -> str:
    """Follow user and built-in aliases to a canonical name (a bundled name or a prefixed name)."""
    aliases = configured_aliases(config)
    seen: list[str] = []
    current = name.strip()
    if not current:
        raise ConfigError("empty model name")
    for _ in range(_MAX_ALIAS_HOPS):
        if current.startswith(_PREFIXES):
            return current
        bundled = find_bundled(current)
        if bundled is not None:
            return bundled.name
        target = aliases.get(current.lower())
        if target is None:
            return current  # unknown here; get_model decides (it may be a remote model id)
        seen.append(current)
        if target.strip().lower() in (s.lower() for s in seen):
            raise ConfigError(f"alias loop in config.toml [aliases]: {' -> '.join([*seen, target])}")
        current = target.strip()
    raise ConfigError(f"alias chain too long from {name!r}: {' -> '.join(seen)}")


@dataclass(frozen=True)
class ModelCheck:
    """What :func:`get_model` would load for a name, found without loading it (:func:`check_model`)."""

    name: str  # the loaded model's ``name``: what history, eval results and reports record
    embedded: bool  # a GGUF run by llama.cpp in this process (a bundled model, gguf:PATH, BASE+ADAPTER)
    adapter: bool  # BASE+ADAPTER: a LoRA adapter on an embedded base (applied at run time, or merged)


@dataclass(frozen=True)
class _Plan:
    """A checked name and how to load it: ``load(options)`` makes the model."""

    check: ModelCheck
    load: Callable[[dict[str, Any]], Model]


def get_model(
    name: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    **options: Any,
) -> Model:
    """A ready model for ``name`` (see the module doc); ``options`` tune the backend.

    Embedded options: ``n_ctx``, ``n_threads``, ``n_batch``, ``flash_attn``, ``repack``.
    Server options: ``connect_timeout``, ``read_timeout``, ``max_retries``.
    Raises :class:`ConfigError` for an unknown name or bad option, :class:`ModelError` when
    the backend cannot be set up (missing model file, missing packages).
    """
    return _plan(name, base_url, api_key, load_config()).load(options)


def check_model(name: str | None = None, *, base_url: str | None = None) -> ModelCheck:
    """Check ``name`` as :func:`get_model` would, without loading weights, assembling a bundled
    model or reaching a server: the same error for a name that leads nowhere (unknown name or
    adapter, missing ``gguf:`` file, a bundled model whose packages are missing), else what it
    names. Options are not checked (the backend does that when it is made)."""
    return _plan(name, base_url, None, load_config()).check


def _plan(name: str | None, base_url: str | None, api_key: str | None, config: dict[str, Any]) -> _Plan:
    # Keys: OPENAI_API_KEY goes only to openai: models, never to an arbitrary --base-url server.
    config_key = _config_str(config, "api_key")
    if name is None and base_url is not None:
        return _remote(None, base_url, api_key or config_key, config, prefix="openai")
    resolved = resolve_name(name if name is not None else default_model_name(config), config)
    base_name, adapter_spec = split_adapter(resolved)
    if adapter_spec is not None:
        return _with_adapter(base_name, adapter_spec, base_url, config)
    if resolved.startswith("gguf:"):
        path = _gguf_file(resolved)
        return _embedded(path, f"gguf:{path}", config)
    if resolved.startswith("lm:"):
        directory = resolved[len("lm:") :]

        def load_lm(options: dict[str, Any]) -> Model:
            from codeloop.lm import load_model  # lazy: torch loads only for lm: models

            return load_model(directory, **options)

        shown = f"lm:{Path(directory).expanduser()}" if directory.strip() else resolved  # as LMModel names it
        return _Plan(ModelCheck(shown, embedded=False, adapter=False), load_lm)
    if resolved.startswith("openai:"):
        url = base_url or os.environ.get("OPENAI_BASE_URL") or _config_str(config, "base_url")
        key = api_key or os.environ.get("OPENAI_API_KEY") or config_key
        return _remote(resolved[len("openai:") :], url, key, config, prefix="openai")
    if resolved.startswith("ollama:"):
        url = base_url or _config_str(config, "ollama_base_url") or OLLAMA_BASE_URL
        return _remote(resolved[len("ollama:") :], url, api_key or "ollama", config, prefix="ollama")
    bundled = find_bundled(resolved)
    if bundled is not None:
        if base_url is not None:
            raise ConfigError(
                f"{bundled.name} is an embedded model: drop --base-url, or name the server's model "
                "(e.g. --model openai:NAME --base-url URL)"
            )
        require_installed(bundled)
        return _embedded(bundled, bundled.name, config)
    if base_url is not None:
        return _remote(resolved, base_url, api_key or config_key, config, prefix="openai")
    known = ", ".join(m.name for m in BUNDLED)
    raise ConfigError(
        f"unknown model {resolved!r}: use one of {known}, an alias from config.toml [aliases], "
        "gguf:/path/model.gguf, openai:MODEL, ollama:MODEL, lm:DIR, or give --base-url for another server"
    )


def _gguf_file(resolved: str) -> Path:
    path = Path(resolved[len("gguf:") :]).expanduser()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path


def _base(base_name: str, config: dict[str, Any] | None) -> tuple[Path | BundledModel, str]:
    """An embedded base's GGUF (or the bundled model to assemble) and canonical name, checked
    without assembling anything."""
    base = resolve_name(base_name, config)
    if base.startswith("gguf:"):
        path = _gguf_file(base)
        return path, f"gguf:{path}"
    bundled = find_bundled(base)
    if bundled is None:
        raise ConfigError(f"adapters apply to embedded models only, not {base_name!r}")
    require_installed(bundled)
    return bundled, bundled.name


def _file(source: Path | BundledModel) -> Path:
    """The GGUF to load: a path as it is, a bundled model assembled first if it is not yet."""
    return source if isinstance(source, Path) else prepare(source)


def embedded_base(base_name: str, config: dict[str, Any] | None = None) -> tuple[Path, str]:
    """The GGUF file and canonical name of an embedded model an adapter can apply to.

    A bundled model is assembled first if it is not yet; ``gguf:PATH`` must exist.
    """
    source, base = _base(base_name, config)
    return _file(source), base


def _with_adapter(base_name: str, adapter_spec: str, base_url: str | None, config: dict[str, Any]) -> _Plan:
    """An embedded base model with a LoRA adapter applied, or the adapter's merged model (``BASE+ADAPTER``)."""
    if base_url is not None and not resolve_name(base_name, config).startswith("gguf:"):
        raise ConfigError(f"adapters apply to embedded models only, not {base_name!r}")
    source, base = _base(base_name, config)
    chosen, merged = choose_adapter(adapter_spec, base)
    name = f"{base}+{ran_spec(adapter_spec, merged)}"  # BASE+NAME:merged or BASE+NAME:lora: what runs
    if merged:
        return _embedded(chosen, name, config, adapter=True)
    return _embedded(source, name, config, adapter=True, lora=chosen)


def _config_str(config: dict[str, Any], key: str) -> str | None:
    value = model_table(config).get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"config.toml: [model] {key} must be a non-empty string, got {value!r}")
    return value.strip() if isinstance(value, str) else None


def _embedded(
    source: Path | BundledModel, name: str, config: dict[str, Any], *, adapter: bool = False, lora: Path | None = None
) -> _Plan:
    """``source`` run by llama.cpp (with the runtime LoRA ``lora``); ``adapter``: a BASE+ADAPTER name."""

    def load(options: dict[str, Any]) -> Model:
        from codeloop.llm.embedded import EmbeddedModel

        settings = EmbeddedSettings.resolve(config, **options)
        return EmbeddedModel(_file(source), name=name, settings=settings, adapter=lora)

    return _Plan(ModelCheck(name, embedded=True, adapter=adapter), load)


def _remote(
    model: str | None,
    base_url: str | None,
    api_key: str | None,
    config: dict[str, Any],
    *,
    prefix: str,
) -> _Plan:
    if model is not None and not model.strip():
        raise ConfigError(f"{prefix}: needs a model name, e.g. {prefix}:gpt-4o-mini")
    name = f"{prefix}:{model}" if model else f"{prefix}:?"

    def load(options: dict[str, Any]) -> Model:
        from codeloop.llm.openai_backend import OPENAI_BASE_URL, OpenAIModel

        settings = RemoteSettings.resolve(config, **options)
        return OpenAIModel(
            model, base_url=base_url or OPENAI_BASE_URL, api_key=api_key, settings=settings, name=name
        )

    return _Plan(ModelCheck(name, embedded=False, adapter=False), load)
