"""The training text: Python files, split into train and held-out *by file*.

The default corpus is the running interpreter's standard library (``test/`` and
``site-packages`` excluded). The split hashes each file's path relative to its root, so the
same file always lands on the same side, whichever machine or order the files come in.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codeloop.errors import ConfigError

__all__ = ["Corpus", "default_corpus_root", "load_corpus"]

_SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "__pycache__", "idle_test"}
MAX_FILE_BYTES = 2_000_000  # a generated table, not code a person wrote


@dataclass(frozen=True)
class Corpus:
    """Texts by split; ``names`` are the paths relative to the corpus roots, for the record."""

    train: list[str]
    heldout: list[str]
    train_names: list[str]
    heldout_names: list[str]

    @property
    def train_bytes(self) -> int:
        return sum(len(t.encode()) for t in self.train)

    @property
    def heldout_bytes(self) -> int:
        return sum(len(t.encode()) for t in self.heldout)


def default_corpus_root() -> Path:
    """The standard library of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def _python_files(root: Path) -> list[tuple[str, Path]]:
    if root.is_file():
        return [(root.name, root)]
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow directory links
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = Path(dirpath) / name
                found.append((path.relative_to(root).as_posix(), path))
    return found


def _is_heldout(name: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def load_corpus(roots: Sequence[Path] | None = None, *, heldout_fraction: float = 0.05) -> Corpus:
    """Read every ``.py`` file under ``roots`` (files or directories; default: the stdlib)."""
    if not 0 < heldout_fraction < 1:
        raise ConfigError(f"held-out fraction must be between 0 and 1, got {heldout_fraction}")
    roots = list(roots) if roots else [default_corpus_root()]
    files: list[tuple[str, Path]] = []
    for root in roots:
        root = Path(root).expanduser()
        if not root.exists():
            raise ConfigError(f"corpus path not found: {root}")
        prefix = "" if len(roots) == 1 else f"{root.name}/"
        files.extend((prefix + name, path) for name, path in _python_files(root))
    split: dict[bool, tuple[list[str], list[str]]] = {False: ([], []), True: ([], [])}
    for name, path in files:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            raw = path.read_bytes()
        except OSError:
            continue  # unreadable: skip, like a file that vanished mid-walk
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        texts, names = split[_is_heldout(name, heldout_fraction)]
        texts.append(text)
        names.append(name)
    (train, train_names), (heldout, heldout_names) = split[False], split[True]
    if not train or not heldout:
        raise ConfigError(
            f"the corpus needs Python files on both sides of the split: got {len(train)} for training "
            f"and {len(heldout)} held out from {', '.join(map(str, roots))} (add files, or raise --heldout)"
        )
    return Corpus(train, heldout, train_names, heldout_names)
