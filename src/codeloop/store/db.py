"""Opening the history database: WAL mode, foreign keys, explicit transactions, clear errors.

Every sqlite3 error is translated here into :class:`~codeloop.errors.HistoryError` that says
what happened and what to do. Nothing in this package ever deletes or rewrites a database it
cannot read: a corrupt file is left exactly as it was for the user to inspect or move aside.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codeloop.errors import HistoryError

__all__ = ["connect", "transaction", "translate_errors"]

BUSY_TIMEOUT_S = 5.0


def _describe(e: sqlite3.Error, path: Path) -> str:
    name = getattr(e, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (
            f"the history database {path} is locked by another codeloop process "
            f"(waited {BUSY_TIMEOUT_S:g} s); try again when it has finished"
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return (
            f"the history database {path} is corrupt or not a SQLite database ({e}); it was left untouched: "
            f"move it aside to start a new history, or repair it with the sqlite3 '.recover' command"
        )
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_IOERR", "SQLITE_FULL")):
        return f"cannot write the history database {path} ({e}): check the disk and the file's permissions"
    return f"history database {path}: {e}"


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn any sqlite3 error raised inside the block into a HistoryError with advice."""
    try:
        yield
    except sqlite3.Error as e:
        raise HistoryError(_describe(e, path)) from e


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back if the block fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if absent) the database at ``path`` in WAL mode, autocommit, foreign keys on."""
    with translate_errors(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HistoryError(f"cannot create the history directory {path.parent}: {e}") from e
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            # Reading the schema first makes a non-database file fail here, before any write.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn
