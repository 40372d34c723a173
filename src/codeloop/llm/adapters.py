"""LoRA adapters for the embedded models: where they live and how a name selects one.

An adapter is a llama.cpp LoRA GGUF registered under ``$CODELOOP_HOME/adapters/NAME/``
(``adapter.gguf`` + ``adapter.json`` naming its base model). ``BASE+NAME`` (for example
``qwen-coder-0.5b+selftrain``) runs the base model with the adapter applied;
``BASE+/path/adapter.gguf`` uses an unregistered file.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.config import user_dir
from codeloop.errors import ConfigError

__all__ = ["Adapter", "adapters_dir", "find_adapter", "list_adapters", "register_adapter", "split_adapter"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Adapter:
    name: str
    base: str  # the bundled model it was trained on, e.g. "qwen-coder-0.5b"
    path: Path  # the adapter GGUF
    info: dict[str, Any]


def adapters_dir() -> Path:
    """``$CODELOOP_HOME/adapters``."""
    return user_dir() / "adapters"


def split_adapter(name: str) -> tuple[str, str | None]:
    """``"base+adapter"`` -> ``("base", "adapter")``; a name without ``+`` -> ``(name, None)``."""
    if "+" not in name or name.startswith(("openai:", "ollama:")):
        return name, None
    base, _, adapter = name.rpartition("+")
    if not base.strip() or not adapter.strip():
        raise ConfigError(f"model name {name!r}: write BASE+ADAPTER, e.g. qwen-coder-0.5b+selftrain")
    return base.strip(), adapter.strip()


def _read(directory: Path) -> Adapter | None:
    meta, gguf = directory / "adapter.json", directory / "adapter.gguf"
    if not (meta.is_file() and gguf.is_file()):
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("base"), str):
        return None
    return Adapter(directory.name, info["base"], gguf, info)


def list_adapters() -> list[Adapter]:
    """Every registered adapter, by name."""
    root = adapters_dir()
    if not root.is_dir():
        return []
    found = (_read(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.is_symlink())
    return [a for a in found if a is not None]


def find_adapter(spec: str) -> Path:
    """The adapter GGUF that ``spec`` names: a registered adapter or a path to a ``.gguf`` file."""
    if "/" in spec or spec.endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"adapter file not found: {path}")
        return path
    if not _NAME.match(spec):
        raise ConfigError(f"bad adapter name {spec!r}: letters, digits, '.', '_' and '-' only")
    adapter = _read(adapters_dir() / spec)
    if adapter is None:
        known = ", ".join(a.name for a in list_adapters()) or "none registered (codeloop selftrain makes one)"
        raise ConfigError(f"unknown adapter {spec!r}: known adapters: {known}")
    return adapter.path


def register_adapter(name: str, gguf_file: Path, base: str, info: dict[str, Any] | None = None) -> Adapter:
    """Copy ``gguf_file`` into the registry as ``name`` (replacing an adapter of that name)."""
    if not _NAME.match(name):
        raise ConfigError(f"bad adapter name {name!r}: letters, digits, '.', '_' and '-' only")
    target = adapters_dir() / name
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "adapter.gguf.part"
    shutil.copyfile(gguf_file, tmp)
    tmp.replace(target / "adapter.gguf")
    meta = {"base": base, **(info or {})}
    tmp_meta = target / "adapter.json.part"
    tmp_meta.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp_meta.replace(target / "adapter.json")
    return Adapter(name, base, target / "adapter.gguf", meta)
