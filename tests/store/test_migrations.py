"""Named, append-only migrations recorded in a table; WAL mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from codeloop.store import History, default_path
from codeloop.store import migrations as mig
from codeloop.store.db import connect


def test_fresh_database_gets_every_migration_once(codeloop_home: Path) -> None:
    with History() as h:
        assert h.path == default_path() == codeloop_home / "history.db"
    db = sqlite3.connect(codeloop_home / "history.db")
    names = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in mig.MIGRATIONS]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    conn = connect(codeloop_home / "history.db")
    assert mig.migrate(conn) == []  # nothing left to apply
    conn.close()


def test_a_new_migration_applies_on_top_of_existing_data(
    codeloop_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with History() as h:
        cid = h.new_conversation("run", "kept")

    def m999_add_tags(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE conversations ADD COLUMN tags TEXT")

    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, ("m999_add_tags", m999_add_tags)])
    conn = connect(codeloop_home / "history.db")
    assert mig.migrate(conn) == ["m999_add_tags"]
    assert conn.execute("SELECT title, tags FROM conversations WHERE id = ?", (cid,)).fetchone()[:] == (
        "kept",
        None,
    )
    conn.close()


def test_a_failing_migration_leaves_the_database_as_it_was(
    codeloop_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    History().close()

    def m998_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (x)")
        db.execute("THIS IS NOT SQL")

    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, ("m998_broken", m998_broken)])
    conn = connect(codeloop_home / "history.db")
    with pytest.raises(sqlite3.OperationalError):
        mig.migrate(conn)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    assert "m998_broken" not in mig.applied(conn)
    conn.close()
