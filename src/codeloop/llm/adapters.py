"""LoRA adapters for the embedded models: where they live and how a name selects one.

An adapter is a llama.cpp LoRA GGUF registered under ``$CODELOOP_HOME/adapters/NAME/``
(``adapter.gguf`` + ``adapter.json`` naming its base model). ``BASE+NAME`` (for example
``qwen-coder-0.5b+selftrain``) runs the base model with the adapter applied;
``BASE+/path/adapter.gguf`` uses an unregistered file.

A registered adapter can be merged into its base (``codeloop adapters merge NAME``,
:func:`codeloop.selftrain.merge.merge_adapter`): ``merged.gguf`` next to ``adapter.gguf`` is a
full model with ``W + s B A`` in place of every adapted weight, which runs at the base's speed (a
runtime adapter costs 1.4x time per token on the 0.5B model). ``BASE+NAME`` then loads the merged
model; ``BASE+NAME:lora`` still applies the runtime adapter, and ``BASE+NAME:merged`` insists on
the merged model. Whichever way it was named, the loaded model's name says which of the two runs
(``BASE+NAME:merged`` or ``BASE+NAME:lora``, :func:`ran_spec`), so history and eval results tell
them apart and the name loads the same again. A merged model counts only while ``adapter.json`` records it (the very file:
inode, size, mtime), the adapter file is the one it was made from (SHA-256), and for the base it
was made from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.config import user_dir
from codeloop.errors import ConfigError

__all__ = [
    "ADAPTER_VARIANTS",
    "MERGED_FILE",
    "Adapter",
    "adapters_dir",
    "choose_adapter",
    "file_sha256",
    "find_adapter",
    "list_adapters",
    "merge_target",
    "ran_spec",
    "record_merge",
    "register_adapter",
    "registered_adapter",
    "split_adapter",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MERGED_FILE = "merged.gguf"
#: ``NAME:lora`` runs the runtime adapter, ``NAME:merged`` the merged model (``NAME``: merged if there is one)
ADAPTER_VARIANTS = ("lora", "merged")


@dataclass(frozen=True)
class Adapter:
    name: str
    base: str  # the bundled model it was trained on, e.g. "qwen-coder-0.5b"
    path: Path  # the adapter GGUF
    info: dict[str, Any]

    @property
    def merged(self) -> Path | None:
        """The merged model made from this adapter file, when there is a current one."""
        entry = self.info.get("merged")
        if not isinstance(entry, dict):
            return None
        path = self.path.parent / MERGED_FILE
        if not _is_recorded(path, entry):
            return None
        return path if entry.get("adapter_sha256") == file_sha256(self.path) else None


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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_recorded(path: Path, entry: dict[str, Any]) -> bool:
    """``path`` is a regular file (not a link) and the very file ``entry`` records: inode, size, mtime."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and [st.st_ino, st.st_size, st.st_mtime_ns] == [
        entry.get("inode"),
        entry.get("bytes"),
        entry.get("mtime_ns"),
    ]


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


def _write_json(directory: Path, name: str, data: dict[str, Any]) -> None:
    """Write ``directory/name`` atomically through a fresh temporary file (never through a link)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, directory / name)
    except BaseException:
        os.unlink(tmp)
        raise


def list_adapters() -> list[Adapter]:
    """Every registered adapter, by name."""
    root = adapters_dir()
    if not root.is_dir():
        return []
    found = (_read(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.is_symlink())
    return [a for a in found if a is not None]


def registered_adapter(name: str) -> Adapter:
    if not _NAME.match(name):
        raise ConfigError(f"bad adapter name {name!r}: letters, digits, '.', '_' and '-' only")
    directory = adapters_dir() / name
    adapter = None if directory.is_symlink() else _read(directory)
    if adapter is None:
        known = ", ".join(a.name for a in list_adapters()) or "none registered (codeloop selftrain makes one)"
        raise ConfigError(f"unknown adapter {name!r}: known adapters: {known}")
    return adapter


def find_adapter(spec: str) -> Path:
    """The adapter GGUF that ``spec`` names: a registered adapter or a path to a ``.gguf`` file."""
    if _is_path(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"adapter file not found: {path}")
        return path
    return registered_adapter(spec).path


def _is_path(spec: str) -> bool:
    return "/" in spec or spec.endswith(".gguf")


def ran_spec(spec: str, merged: bool) -> str:
    """The adapter part of the name of a model loaded as ``BASE+spec``, ``merged`` as
    :func:`choose_adapter` chose: ``NAME:merged`` or ``NAME:lora`` for a registered adapter (which
    of the two runs, and a spec that loads it again), a path to an adapter file as it is (always
    applied at run time)."""
    if _is_path(spec):
        return spec
    return f"{spec.partition(':')[0]}:{'merged' if merged else 'lora'}"


def choose_adapter(spec: str, base: str) -> tuple[Path, bool]:
    """What ``BASE+spec`` runs on the base model named ``base``: ``(file, merged)``.

    ``merged`` True: ``file`` is a merged model to load instead of the base; False: ``file`` is a
    LoRA adapter for llama.cpp to apply at run time. ``spec`` is ``NAME``, ``NAME:lora``,
    ``NAME:merged`` or a path to an adapter GGUF.
    """
    if _is_path(spec):
        return find_adapter(spec), False
    name, _, variant = spec.partition(":")
    if variant and variant not in ADAPTER_VARIANTS:
        raise ConfigError(f"adapter {spec!r}: write NAME, NAME:lora or NAME:merged")
    adapter = registered_adapter(name)
    if variant == "lora":
        return adapter.path, False
    entry = adapter.info.get("merged")
    merged = adapter.merged if isinstance(entry, dict) and entry.get("base") == base else None
    if merged is not None:
        return merged, True
    if variant == "merged":
        if adapter.base != base:
            raise ConfigError(
                f"adapter {name!r} was trained on {adapter.base}, not {base}: its merged model is for {adapter.base}"
            )
        raise ConfigError(
            f"adapter {name!r} has no current merged model: run `codeloop adapters merge {name}`"
        )
    return adapter.path, False


def _remove_recorded_merge(adapter: Adapter | None) -> None:
    """Remove the adapter's merged model, but only the very file a merge recorded (codeloop wrote it)."""
    entry = adapter.info.get("merged") if adapter is not None else None
    if adapter is not None and isinstance(entry, dict):
        path = adapter.path.parent / MERGED_FILE
        if _is_recorded(path, entry):
            path.unlink()


def register_adapter(name: str, gguf_file: Path, base: str, info: dict[str, Any] | None = None) -> Adapter:
    """Copy ``gguf_file`` into the registry as ``name`` (replacing an adapter of that name and its merge)."""
    if not _NAME.match(name):
        raise ConfigError(f"bad adapter name {name!r}: letters, digits, '.', '_' and '-' only")
    target = adapters_dir() / name
    if target.is_symlink():
        raise ConfigError(f"{target} is a symbolic link: not registering through it")
    target.mkdir(parents=True, exist_ok=True)
    previous = _read(target)
    fd, tmp = tempfile.mkstemp(prefix=".adapter.gguf.", suffix=".part", dir=target)
    try:
        with os.fdopen(fd, "wb") as out, open(gguf_file, "rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(tmp, target / "adapter.gguf")
    except BaseException:
        os.unlink(tmp)
        raise
    meta = {"base": base, **(info or {})}
    meta.pop("merged", None)
    _write_json(target, "adapter.json", meta)
    _remove_recorded_merge(previous)  # made from the replaced adapter file
    return Adapter(name, base, target / "adapter.gguf", meta)


def merge_target(adapter: Adapter) -> Path:
    """Where ``adapter``'s merged model goes; refuses a file there that no merge of codeloop recorded."""
    out = adapter.path.parent / MERGED_FILE
    entry = adapter.info.get("merged")
    if os.path.lexists(out) and not (isinstance(entry, dict) and _is_recorded(out, entry)):
        raise ConfigError(f"{out} exists and is not a merge codeloop recorded: move it away first")
    return out


def record_merge(adapter: Adapter, base: str, adapter_sha256: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Record the merged model just written for ``adapter`` (made from the adapter file with that SHA-256)."""
    out = adapter.path.parent / MERGED_FILE
    st = os.lstat(out)
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{out} is not a regular file")
    record = {
        "file": MERGED_FILE,
        "base": base,
        "adapter_sha256": adapter_sha256,
        **figures,
        "bytes": st.st_size,
        "inode": st.st_ino,
        "mtime_ns": st.st_mtime_ns,
    }
    _write_json(out.parent, "adapter.json", {**adapter.info, "merged": record})
    return record
