"""Host side of the worker protocol: length-prefixed JSON frames over pipes (never pickle).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. The worker
(``worker.py``) has its own stdlib copy of this format because it must not import codeloop.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

from codeloop.errors import SandboxError

__all__ = ["MAX_FRAME", "FrameReader", "ProtocolError", "encode_frame", "encode_limits", "encode_run_request"]

#: Largest reply accepted (figures are the big part); larger means a broken or hostile worker.
MAX_FRAME = 64 << 20


class ProtocolError(SandboxError):
    """The worker sent bytes that are not a valid frame; the session must restart."""


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps(separators=) builds one per call
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # C scanner
_QUOTE = json.encoder.encode_basestring_ascii  # str -> JSON string literal, in C


def encode_run_request(nonce: str, code: str, cell: int, limits: str) -> bytes:
    """The frame of a run request, built directly: the per-cell hot path (same JSON as encode_frame).

    ``limits`` is a pre-encoded run of ``,"key":int`` members (see ``encode_limits``)."""
    body = f'{{"op":"run","id":{_QUOTE(nonce)},"code":{_QUOTE(code)},"cell":{int(cell)}{limits}}}'.encode("ascii")
    return len(body).to_bytes(4, "big") + body


def encode_limits(limits: dict[str, int]) -> str:
    """Integer request members, encoded once per session for ``encode_run_request``."""
    return "".join(f",{_QUOTE(key)}:{int(value)}" for key, value in limits.items())


def encode_frame(message: dict[str, Any]) -> bytes:
    """One frame: length prefix plus compact JSON (ASCII, so any str survives the pipe)."""
    body = _ENCODE(message).encode("ascii")
    return len(body).to_bytes(4, "big") + body


class FrameReader:
    """Accumulates reply bytes and yields whole frames as dicts."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return the frames they complete (possibly none)."""
        if not self._buf and len(data) >= 4 and int.from_bytes(data[:4], "big") == len(data) - 4:
            return [self._decode(data[4:])]  # the usual case: exactly one whole frame, no copies
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
            frames.append(self._decode(body))
        return frames

    def _decode(self, body: bytes) -> dict[str, Any]:
        if len(body) > self._max:
            raise ProtocolError(f"worker sent a frame of {len(body)} bytes (limit {self._max})")
        try:
            text = body.decode("utf-8")
            message, end = _SCAN(text, 0)
        except (UnicodeDecodeError, json.JSONDecodeError, StopIteration) as e:
            raise ProtocolError(f"worker sent a frame that is not JSON: {e!r}") from e
        if end != len(text):
            raise ProtocolError("worker sent a frame with data after its JSON value")
        if not isinstance(message, dict):
            raise ProtocolError("worker sent a frame that is not a JSON object")
        return message

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buf)
