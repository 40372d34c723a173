"""Shared pieces of the analyze/complete tests: a scripted model and file snapshots (the real
model comes from tests/conftest.py's ``default_ready``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from codeloop.llm import Model
from codeloop.llm.types import Chunk, FinishReason, Request, Usage


class ScriptedModel(Model):
    """Answers every request with the next scripted text, in small chunks; records the requests."""

    name = "scripted"

    def __init__(self, *replies: str, chunk: int = 3, fail: Exception | None = None) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []
        self.chunk = chunk
        self.fail = fail
        self.chunks_sent = 0

    def execute(self, request: Request) -> Iterator[Chunk]:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        text = self.replies.pop(0) if self.replies else ""
        for i in range(0, len(text), self.chunk):
            self.chunks_sent += 1
            yield Chunk(text=text[i : i + self.chunk])
        yield Chunk(
            text="", finish_reason=FinishReason.STOP, usage=Usage(prompt_tokens=10, completion_tokens=3)
        )


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` (and root itself when a file) with its bytes and mtime in ns."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
