"""Checkpoints: one self-contained file with the model, optimiser, tokeniser, config and RNG state.

``DIR/checkpoint.pt`` is written atomically (a temporary file, then a rename), so an interrupted
save never leaves a half-written checkpoint behind. It is loaded with ``weights_only=True``:
tensors and plain data only, never arbitrary pickled objects, so a checkpoint from elsewhere
cannot run code. A file that is not a checkpoint, is truncated, or comes from another format
version raises a :class:`ModelError` that says so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from codeloop.errors import ModelError

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "checkpoint_path",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "codeloop-lm"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
_REQUIRED = ("model_config", "train_config", "tokenizer", "unigram", "model", "step")


def checkpoint_path(target: str | os.PathLike[str]) -> Path:
    """``DIR/checkpoint.pt`` for a directory, or the file itself."""
    path = Path(target).expanduser()
    return path / CHECKPOINT_NAME if path.is_dir() or not path.suffix else path


def save_checkpoint(directory: Path, payload: dict[str, Any]) -> Path:
    import torch

    from codeloop import __version__

    directory.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "codeloop_version": __version__, **payload}
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        final = directory / CHECKPOINT_NAME
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def load_checkpoint(target: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint of ``target`` (a directory or a ``.pt`` file), checked for format and version."""
    from codeloop.lm import require_torch

    require_torch()
    import torch

    path = checkpoint_path(target)
    if not path.is_file():
        raise ModelError(f"no checkpoint at {path}: train one with `codeloop lm train --out DIR`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... on a bad file
        raise ModelError(
            f"{path} is not a readable codeloop lm checkpoint (corrupt or truncated?): {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path} is not a codeloop lm checkpoint (no {FORMAT!r} format marker)")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path} is a codeloop lm checkpoint of format version {version!r} (written by codeloop "
            f"{data.get('codeloop_version', '?')}); this codeloop reads version {FORMAT_VERSION}: "
            "retrain it, or use the codeloop version that wrote it"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ModelError(f"{path} is an incomplete codeloop lm checkpoint: missing {', '.join(missing)}")
    return data
