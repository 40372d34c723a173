"""Runs and chat turns stored as they happen, listed and loaded back; bad databases give clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from codeloop.agent.events import Finished, StepDone
from codeloop.agent.result import AgentResult, CellOutcome, Figure, Step, TaskStatus
from codeloop.errors import HistoryError
from codeloop.store import History, Recorder
from codeloop.store import db as store_db


def _result(task: str, png: bytes | None = None) -> AgentResult:
    step0 = Step(0, "```python\nprint(4)\n```", "print(4)", CellOutcome("ok", stdout="4\n"), "Output: 4")
    if png is not None:
        step0.figures.append(Figure(png=png))
    return AgentResult(task, model="fake", answer="4", steps=[step0, Step(1, "It is 4.")])


def test_a_run_is_stored_step_by_step_and_loads_back(codeloop_home: Path, png: bytes) -> None:
    result = _result("what is 2+2", png)
    with History() as h:
        cid = h.new_conversation("run", "what is 2+2", "fake")
        rec = Recorder(h, cid)
        rec.begin(result.task)
        for step in result.steps:
            rec(StepDone(step))
        rec(Finished(result))
        assert result.id == cid
        fig_path = Path(result.steps[0].figures[0].path or "")
        assert fig_path.parent == codeloop_home / "figures" / str(cid)
        assert fig_path.read_bytes() == png

        [summary] = h.list()
        assert (summary.id, summary.kind, summary.turns, summary.last_status) == (cid, "run", 1, "answered")
        stored = h.load(cid)
    assert stored.title == "what is 2+2"
    [turn] = stored.turns
    assert turn.answer == "4"
    assert turn.status is TaskStatus.ANSWERED
    assert turn.steps[0].outcome == result.steps[0].outcome
    assert turn.steps[0].figures[0].path == str(fig_path)


def test_chat_turns_keep_their_order(codeloop_home: Path) -> None:
    with History() as h:
        cid = h.new_conversation("chat", "chat", "fake")
        for task in ("first", "second", "third"):
            rec = Recorder(h, cid)
            rec.begin(task)
            rec(Finished(_result(task)))
        h.rename(cid, "my  chat\nabout things")
        stored = h.load(cid)
    assert [t.task for t in stored.turns] == ["first", "second", "third"]
    assert stored.title == "my chat about things"


def test_an_unfinished_turn_keeps_its_steps(codeloop_home: Path) -> None:
    with History() as h:
        cid = h.new_conversation("run", "t")
        rec = Recorder(h, cid)
        rec.begin("t")
        rec(StepDone(_result("t").steps[0]))
    # The process "died" here; a new one reads what was committed.
    with History() as h:
        [turn] = h.load(cid).turns
    assert turn.status is TaskStatus.INTERRUPTED
    assert turn.steps[0].code == "print(4)"
    assert "never finished" in (turn.error or "")


def test_unknown_ids_and_kinds_are_clear_errors(codeloop_home: Path) -> None:
    with History() as h:
        with pytest.raises(HistoryError, match="no conversation with id 42"):
            h.load(42)
        with pytest.raises(HistoryError, match="no conversation with id 42"):
            h.rename(42, "x")
        with pytest.raises(HistoryError, match="kind"):
            h.new_conversation("movie", "x")


def test_a_corrupt_database_is_reported_and_left_untouched(codeloop_home: Path) -> None:
    path = codeloop_home / "history.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    garbage = b"this is not a database at all" * 100
    path.write_bytes(garbage)
    with pytest.raises(HistoryError, match="corrupt") as info:
        History()
    assert "left untouched" in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == garbage


def test_a_damaged_page_is_reported_and_committed_rows_survive_elsewhere(codeloop_home: Path) -> None:
    with History() as h:
        cid = h.new_conversation("run", "precious")
    path = codeloop_home / "history.db"
    # Checkpoint the WAL into the main file, then smash the schema page's header.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    backup = path.read_bytes()
    data = bytearray(backup)
    data[100:200] = b"\xff" * 100
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryError, match="corrupt"):
        with History() as h:
            h.list()
    assert path.read_bytes() == bytes(data)  # nothing was rewritten
    path.write_bytes(backup)
    with History() as h:
        assert h.load(cid).title == "precious"


def test_a_locked_database_is_reported_and_loses_nothing(
    codeloop_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.2)
    with History() as h:
        cid = h.new_conversation("run", "before the lock")
        other = sqlite3.connect(h.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(HistoryError, match="locked"):
                h.new_conversation("run", "during the lock")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert [s.title for s in h.list()] == ["before the lock"]
        assert h.load(cid).title == "before the lock"


def test_recorder_stops_quietly_after_a_database_error(
    codeloop_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.1)
    seen: list[HistoryError] = []
    with History() as h:
        cid = h.new_conversation("run", "t")
        rec = Recorder(h, cid, on_error=seen.append)
        rec.begin("t")
        other = sqlite3.connect(h.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            result = _result("t")
            rec(StepDone(result.steps[0]))
            rec(StepDone(result.steps[1]))
            rec(Finished(result))
        finally:
            other.execute("ROLLBACK")
            other.close()
    assert len(seen) == 1
    assert rec.error is seen[0]
