"""Run and chat history in SQLite (WAL, named migrations) and export to Jupyter notebooks."""

from __future__ import annotations

from codeloop.store.history import ConversationSummary, History, StoredConversation, default_path
from codeloop.store.notebook import export_notebook, to_notebook
from codeloop.store.recorder import Recorder

__all__ = [
    "ConversationSummary",
    "History",
    "Recorder",
    "StoredConversation",
    "default_path",
    "export_notebook",
    "to_notebook",
]
