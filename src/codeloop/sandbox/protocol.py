"""Host side of the worker protocol: length-prefixed frames over pipes (never pickle).

A frame is a 4-byte big-endian length followed by that many bytes of body. A run request's body
is binary (built here, read by the trusted worker without a JSON parser): ``b"r"``, the 16-char
nonce, the cell number (8 bytes), max_repr, max_figures and max_files (4 bytes each, big-endian),
then the source as UTF-8 with lone surrogates passed through. A reply's body is UTF-8 JSON, which
the host parses and checks because the worker is not trusted. The worker (``worker.py``) has its
own stdlib copy of this format because it must not import codeloop.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

from codeloop.errors import SandboxError

__all__ = [
    "MAX_CODE_BYTES",
    "MAX_FRAME",
    "FrameReader",
    "NonceSource",
    "ProtocolError",
    "decode_run_request",
    "encode_frame",
    "encode_limits",
    "encode_run_request",
    "ok_reply_frame",
]

#: Largest frame either side accepts (figures are the big part of replies); larger means a
#: broken or hostile worker, or a cell too big to send.
MAX_FRAME = 64 << 20
#: the fixed part of a run request's body, after the 4-byte length
_RUN_HEADER = struct.Struct(">c16sQIII")
_LIMITS = struct.Struct(">III")
#: Largest cell source (UTF-8 bytes) a run request can carry.
MAX_CODE_BYTES = MAX_FRAME - _RUN_HEADER.size


class ProtocolError(SandboxError):
    """The worker sent bytes that are not a valid frame; the session must restart."""


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps(separators=) builds one per call
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # C scanner


def encode_run_request(nonce: str, code: str, cell: int, limits: bytes) -> bytes:
    """The frame of a run request (the per-cell hot path: no JSON, no escaping of the source).

    ``nonce`` is 16 ASCII characters; ``limits`` comes from ``encode_limits``. Raises ValueError
    for a source over MAX_CODE_BYTES."""
    source = code.encode("utf-8", "surrogatepass")
    if len(source) > MAX_CODE_BYTES:
        raise ValueError(f"the cell is {len(source)} bytes of UTF-8, over the {MAX_CODE_BYTES} byte limit")
    head = nonce.encode("ascii")
    if len(head) != 16:
        raise ValueError(f"a nonce is 16 ASCII characters, not {nonce!r}")
    size = _RUN_HEADER.size + len(source)
    return b"".join((size.to_bytes(4, "big"), b"r", head, cell.to_bytes(8, "big"), limits, source))


def encode_limits(max_repr: int, max_figures: int, max_files: int) -> bytes:
    """A session's per-request limits, packed once for ``encode_run_request``."""
    return _LIMITS.pack(max_repr, max_figures, max_files)


def decode_run_request(body: bytes) -> dict[str, Any]:
    """The fields of a run request's body (the worker's reading, for tests and debugging)."""
    op, nonce, cell, max_repr, max_figures, max_files = _RUN_HEADER.unpack_from(body)
    return {
        "op": op.decode("ascii"),
        "id": nonce.decode("ascii"),
        "cell": cell,
        "max_repr": max_repr,
        "max_figures": max_figures,
        "max_files": max_files,
        "code": body[_RUN_HEADER.size :].decode("utf-8", "surrogatepass"),
    }


class NonceSource:
    """Fresh 16-hex-character request nonces from the OS's CSPRNG, fetched 64 at a time.

    A worker sees every nonce it is sent; it must not be able to guess the next one, so each
    comes from unused random bytes (never a counter), but one getrandom() call serves many runs.
    """

    _BATCH = 8 * 64

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(self._BATCH), 0
        self._at = at + 8
        return self._pool[at : at + 8].hex()


def ok_reply_frame(nonce: str) -> bytes:
    """The exact frame of a reply that says only "ok" (what the worker writes for a quiet cell)."""
    body = b'{"status":"ok","id":"' + nonce.encode("ascii") + b'"}'
    return len(body).to_bytes(4, "big") + body


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
        except (ValueError, StopIteration, RecursionError, MemoryError) as e:
            # ValueError covers bad UTF-8, bad JSON and integers past the digit limit; a hostile
            # worker may also nest thousands of levels (RecursionError)
            raise ProtocolError(f"worker sent a frame that is not JSON: {type(e).__name__}: {str(e)[:200]}") from e
        if end != len(text):
            raise ProtocolError("worker sent a frame with data after its JSON value")
        if not isinstance(message, dict):
            raise ProtocolError("worker sent a frame that is not a JSON object")
        return message

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buf)
