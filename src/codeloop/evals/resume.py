"""Output files that a rerun continues: the settings a file was started with, kept beside it.

A samples file (``codeloop eval``) and a batch results file (``codeloop run --batch``) are
appended to as they are made, and running the same command again continues them. The run that
starts such a file records its settings in ``<file>.meta.json``; a run with other settings is
refused, naming each setting that differs, rather than mixing two runs in one file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codeloop.evals.errors import EvalInputError

__all__ = ["check_meta", "meta_path"]

_UNSET = object()


def meta_path(path: str | os.PathLike[str]) -> Path:
    """``<file>.meta.json``: where the settings of the run that started ``path`` are kept."""
    return Path(str(path) + ".meta.json")


def check_meta(path: str | os.PathLike[str], meta: Mapping[str, Any], *, kind: str) -> None:
    """Allow continuing ``path`` only with the settings it was started with; record them for a new file.

    ``meta`` must be JSON (it is written as it is); ``kind`` names what such a file holds in the
    error for a file codeloop did not start ("batch", "generation run"). Raises
    :class:`EvalInputError`, whose message says what to do.
    """
    out = Path(path)
    saved = meta_path(out)
    now = json.loads(json.dumps(meta))  # compare as it was read back: tuples are lists there
    if saved.exists():
        try:
            then = json.loads(saved.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EvalInputError(f"cannot read {saved}: {e}; use another --out, or remove it and {out} to start afresh") from e
        if not isinstance(then, dict):
            raise EvalInputError(
                f"{saved} is not a JSON object; use another --out, or remove it and {out} to start afresh"
            )
        diffs = _differences(then, now)
        if diffs:
            raise EvalInputError(
                f"{out} was started with other settings ({'; '.join(diffs)}): run with the same settings to "
                "continue it, or use another --out"
            )
    elif out.exists() and out.stat().st_size > 0:
        raise EvalInputError(
            f"{out} exists but has no {saved.name}: it is not a codeloop {kind} and cannot be continued; "
            "use another --out"
        )
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(now, indent=2) + "\n", encoding="utf-8")


def _differences(then: Any, now: Any, name: str = "") -> list[str]:
    """Each setting that differs, as ``name: then-value then, now-value now``; nested tables by dotted name."""
    if isinstance(then, dict) and isinstance(now, dict):
        keys = [*now, *(k for k in then if k not in now)]
        return [d for k in keys for d in _differences(then.get(k, _UNSET), now.get(k, _UNSET), f"{name}{k}.")]
    if then == now:
        return []
    return [f"{name.removesuffix('.')}: {_shown(then)} then, {_shown(now)} now"]


def _shown(value: Any) -> str:
    return "unset" if value is _UNSET else repr(value)
