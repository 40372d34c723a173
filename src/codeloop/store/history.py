"""Every run and chat turn, stored in SQLite as it happens, and read back as AgentResults.

A conversation is a ``codeloop run`` (one turn) or a ``codeloop chat`` (many). Steps are
written as they complete, so an interrupted or crashed run keeps everything up to its last
step; the whole result is written when the turn finishes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from codeloop.agent.result import AgentResult, Step, TaskStatus
from codeloop.config import user_dir
from codeloop.errors import HistoryError
from codeloop.store.db import connect, transaction, translate_errors
from codeloop.store.figures import save_figures
from codeloop.store.migrations import migrate

__all__ = ["ConversationSummary", "History", "StoredConversation", "default_path"]


def default_path() -> Path:
    """``<user dir>/history.db``."""
    return user_dir() / "history.db"


@dataclass(frozen=True)
class ConversationSummary:
    """One line of ``history list``."""

    id: int
    kind: str
    title: str
    model: str
    created_at: float
    updated_at: float
    turns: int
    last_status: str | None


@dataclass
class StoredConversation:
    """A conversation read back: its turns as AgentResults, oldest first."""

    id: int
    kind: str
    title: str
    model: str
    created_at: float
    turns: list[AgentResult] = field(default_factory=list)


class History:
    """The history database. Open it, write turns as they happen, list and load them later."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.figures_dir = self.path.parent / "figures"
        self._db = connect(self.path)
        try:
            with translate_errors(self.path):
                migrate(self._db)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def new_conversation(self, kind: str, title: str, model: str = "") -> int:
        """Create a conversation (``kind`` is "run" or "chat") and return its id."""
        if kind not in ("run", "chat"):
            raise HistoryError(f"conversation kind must be 'run' or 'chat', got {kind!r}")
        now = time.time()
        with translate_errors(self.path), transaction(self._db) as db:
            cur = db.execute(
                "INSERT INTO conversations (kind, title, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (kind, _title(title), model, now, now),
            )
            return int(cur.lastrowid or 0)

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation a new title."""
        with translate_errors(self.path), transaction(self._db) as db:
            cur = db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (_title(title), conversation_id)
            )
            if cur.rowcount == 0:
                raise HistoryError(f"no conversation with id {conversation_id} in {self.path}")

    def start_turn(self, conversation_id: int, task: str) -> int:
        """Record that a turn began (status "running"); return its id."""
        now = time.time()
        with translate_errors(self.path), transaction(self._db) as db:
            row = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM turns WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            cur = db.execute(
                "INSERT INTO turns (conversation_id, position, task, status, created_at) VALUES (?, ?, ?, 'running', ?)",
                (conversation_id, int(row[0]), task, now),
            )
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            return int(cur.lastrowid or 0)

    def record_step(self, conversation_id: int, turn_id: int, step: Step) -> list[Path]:
        """Save the step's figures as files, then the step itself; return the new figure paths."""
        paths = save_figures(
            self.figures_dir / str(conversation_id), f"turn{turn_id}-step{step.index}", step.figures
        )
        with translate_errors(self.path), transaction(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO steps (turn_id, position, step_json) VALUES (?, ?, ?)",
                (turn_id, step.index, json.dumps(step.to_dict())),
            )
        return paths

    def finish_turn(self, turn_id: int, result: AgentResult) -> None:
        """Store the turn's final result (figures must already have paths, see ``record_step``)."""
        now = time.time()
        with translate_errors(self.path), transaction(self._db) as db:
            row = db.execute("SELECT conversation_id FROM turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None:
                raise HistoryError(f"no turn with id {turn_id} in {self.path}")
            result.id = int(row[0])
            db.execute(
                "UPDATE turns SET status = ?, answer = ?, result_json = ?, finished_at = ? WHERE id = ?",
                (result.status.value, result.answer, json.dumps(result.to_dict()), now, turn_id),
            )
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, row[0]))

    # -- reading --------------------------------------------------------------------------

    def list(self, limit: int = 20) -> list[ConversationSummary]:
        """The most recently updated conversations, newest first."""
        with translate_errors(self.path):
            rows = self._db.execute(
                """SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS n_turns,
                          (SELECT status FROM turns t WHERE t.conversation_id = c.id
                           ORDER BY position DESC LIMIT 1) AS last_status
                   FROM conversations c ORDER BY c.updated_at DESC, c.id DESC LIMIT ?""",
                (limit,),
            ).fetchall()
        return [
            ConversationSummary(
                r["id"],
                r["kind"],
                r["title"],
                r["model"],
                r["created_at"],
                r["updated_at"],
                r["n_turns"],
                r["last_status"],
            )
            for r in rows
        ]

    def load(self, conversation_id: int) -> StoredConversation:
        """A conversation with all its turns; a turn that never finished is rebuilt from its steps."""
        with translate_errors(self.path):
            conv = self._db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            if conv is None:
                raise HistoryError(
                    f"no conversation with id {conversation_id} in {self.path} (see 'codeloop history list')"
                )
            turns = self._db.execute(
                "SELECT * FROM turns WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            ).fetchall()
            stored = StoredConversation(
                conv["id"], conv["kind"], conv["title"], conv["model"], conv["created_at"]
            )
            for turn in turns:
                stored.turns.append(self._turn_result(turn, conv["model"]))
        return stored

    def _turn_result(self, row: sqlite3.Row, model: str) -> AgentResult:
        try:
            if row["result_json"]:
                result = AgentResult.from_dict(json.loads(row["result_json"]))
            else:
                steps = self._db.execute(
                    "SELECT step_json FROM steps WHERE turn_id = ? ORDER BY position",
                    (row["id"],),
                ).fetchall()
                result = AgentResult(
                    task=row["task"],
                    model=model,
                    status=TaskStatus.INTERRUPTED,
                    steps=[Step.from_dict(json.loads(s[0])) for s in steps],
                    error="this turn never finished (the process was stopped); its steps up to then are kept",
                )
        except (ValueError, KeyError, TypeError) as e:
            raise HistoryError(f"turn {row['id']} in {self.path} holds unreadable data: {e}") from e
        result.id = int(row["conversation_id"])
        return result


def _title(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= 80 else first[:77] + "..."
