"""Host side of the worker protocol: length-prefixed JSON frames over pipes (never pickle).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. The worker
(``worker.py``) has its own stdlib copy of this format because it must not import codeloop.
"""

from __future__ import annotations

import json
from typing import Any

from codeloop.errors import SandboxError

__all__ = ["MAX_FRAME", "FrameReader", "ProtocolError", "encode_frame"]

#: Largest reply accepted (figures are the big part); larger means a broken or hostile worker.
MAX_FRAME = 64 << 20


class ProtocolError(SandboxError):
    """The worker sent bytes that are not a valid frame; the session must restart."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """One frame: length prefix plus compact JSON."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return len(body).to_bytes(4, "big") + body


class FrameReader:
    """Accumulates reply bytes and yields whole frames as dicts."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return the frames they complete (possibly none)."""
        self._buf += data
        frames: list[dict[str, Any]] = []
        while len(self._buf) >= 4:
            size = int.from_bytes(self._buf[:4], "big")
            if size > self._max:
                raise ProtocolError(f"worker sent a frame of {size} bytes (limit {self._max})")
            if len(self._buf) < 4 + size:
                break
            body = bytes(self._buf[4 : 4 + size])
            del self._buf[: 4 + size]
            try:
                message = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ProtocolError(f"worker sent a frame that is not JSON: {e}") from e
            if not isinstance(message, dict):
                raise ProtocolError("worker sent a frame that is not a JSON object")
            frames.append(message)
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buf)
