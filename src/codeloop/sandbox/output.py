"""Bounded capture of one output stream: head and tail kept, the middle dropped and marked.

A cell may print gigabytes; the host keeps at most ``limit`` bytes per stream (the first three
quarters and the last quarter, where errors usually are), counts the rest, and says so in the
text. Invalid UTF-8 is decoded with replacement characters, never an exception.
"""

from __future__ import annotations

import codecs
from collections import deque

__all__ = ["BoundedOutput"]


class BoundedOutput:
    """Collects bytes of one stream up to ``limit``; ``feed`` returns the text to stream live."""

    def __init__(self, name: str, limit: int) -> None:
        if limit < 64:
            raise ValueError(f"output limit must be at least 64 bytes, not {limit}")
        self.name = name
        self.limit = limit
        self._head_limit = limit - limit // 4
        self._tail_limit = limit // 4
        self._head: list[str] = []
        self._head_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self.total = 0
        self._marked = False

    @property
    def dropped(self) -> int:
        """Bytes received but neither in the head nor in the tail."""
        return self.total - self._head_bytes - self._tail_bytes

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def feed(self, data: bytes) -> str:
        """Take a chunk; return the part of it that belongs to the head, decoded, for streaming."""
        self.total += len(data)
        room = self._head_limit - self._head_bytes
        live = ""
        if room > 0:
            part, data = data[:room], data[room:]
            self._head_bytes += len(part)
            live = self._decoder.decode(part, final=self._head_bytes >= self._head_limit)
            self._head.append(live)
        if data and not self._marked:
            self._marked = True
            live += self.limit_marker()
        if data:
            self._tail.append(data)
            self._tail_bytes += len(data)
            while self._tail and self._tail_bytes - len(self._tail[0]) >= self._tail_limit:
                self._tail_bytes -= len(self._tail.popleft())
            if self._tail_bytes > self._tail_limit:  # cut the oldest chunk to fit exactly
                excess = self._tail_bytes - self._tail_limit
                self._tail[0] = self._tail[0][excess:]
                self._tail_bytes -= excess
        return live

    def limit_marker(self) -> str:
        return (
            f"\n[codeloop: {self.name} passed {self._head_limit} bytes; live output stops here, "
            "the result keeps the end]\n"
        )

    def text(self) -> str:
        """Everything kept, with a marker where bytes were dropped."""
        head = "".join(self._head) + self._decoder.decode(b"", final=True)
        tail = b"".join(self._tail).decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        return (
            f"{head}\n[... codeloop: {self.dropped} bytes of {self.name} omitted "
            f"(limit {self.limit} bytes per call) ...]\n{tail}"
        )
