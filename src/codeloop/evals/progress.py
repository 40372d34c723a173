"""A progress display: a redrawn bar on a terminal, plain lines otherwise (logs, CI, pipes).

Plain mode prints at most one line per ``every`` seconds plus the last one, so a log of a long
run stays short; nothing is ever interactive.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Counts finished units of work and shows rate and time left; ``note`` adds a short status."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        every: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.enabled = enabled
        self.done = 0
        self.note = ""
        self._start = time.monotonic()
        self._last_line = float("-inf")  # the first update always prints

    def advance(self, count: int = 1, note: str | None = None) -> None:
        self.done += count
        if note is not None:
            self.note = note
        self._show(final=self.done >= self.total)

    def _text(self) -> str:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        note = f" {self.note}" if self.note else ""
        return f"{self.label}: {self.done}/{self.total} ({pct:3.0f}%) {_clock(elapsed)}<{_clock(left)}{note}"

    def _show(self, final: bool) -> None:
        if not self.enabled:
            return
        if self.tty:
            width = 24
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self._text()}\x1b[K" + ("\n" if final else ""))
            self.stream.flush()
            return
        now = time.monotonic()
        if final or now - self._last_line >= self.every:
            self._last_line = now
            self.stream.write(self._text() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line on a terminal if the work stopped before the total."""
        if self.enabled and self.tty and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()
