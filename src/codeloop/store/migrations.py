"""Schema changes as named, append-only migrations, each recorded in ``_migrations`` once applied.

Never edit or reorder a migration that has shipped: add a new one at the end (the pattern of
simonw/llm's ``migrations.py``). Each migration runs in its own transaction, so a failure leaves
the database at the last complete migration.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from codeloop.store.db import transaction

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration, under its function name."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('run', 'chat')),
            title TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            position INTEGER NOT NULL,
            task TEXT NOT NULL,
            status TEXT NOT NULL,
            answer TEXT,
            result_json TEXT,
            created_at REAL NOT NULL,
            finished_at REAL,
            UNIQUE (conversation_id, position)
        )"""
    )
    db.execute(
        """CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            turn_id INTEGER NOT NULL REFERENCES turns(id),
            position INTEGER NOT NULL,
            step_json TEXT NOT NULL,
            UNIQUE (turn_id, position)
        )"""
    )
    db.execute("CREATE INDEX conversations_updated ON conversations(updated_at)")


def applied(db: sqlite3.Connection) -> set[str]:
    """Names of the migrations already recorded in this database."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return {row[0] for row in db.execute("SELECT name FROM _migrations")}


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded, in order; return the names applied now."""
    done = applied(db)
    ran: list[str] = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with transaction(db):
            # Another process may have applied it while we waited for the write lock.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue
            fn(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
        ran.append(name)
    return ran
