"""Text from a sandbox made safe to write to a terminal or a pipe (a leaf module: stdlib only).

Sandboxed code chooses every byte it prints, so raw output could drive the user's terminal:
OSC 52 writes the clipboard, OSC 0 sets the title, CSI sequences clear the screen or move the
cursor over earlier lines, and some terminals answer queries by typing into the shell. Faces
(``codeloop exec``, ``run``, ``chat``) pass sandbox text through :func:`printable` before
writing it; ``--json`` output and the Python API keep the exact text.
"""

from __future__ import annotations

__all__ = ["printable"]


def _table() -> dict[int, str]:
    controls = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
    return {c: f"\\x{c:02x}" for c in controls if c not in (0x09, 0x0A)}


_ESCAPES = _table()


def printable(text: str) -> str:
    """``text`` with C0/C1 control characters (ESC, CSI, OSC, BEL, backspace, ...) shown as ``\\xNN``.

    Newline and tab pass; a ``\\r\\n`` line end becomes ``\\n`` and a lone ``\\r`` is escaped
    (it would let output overwrite what was printed before it on the same line).
    """
    if text.isprintable():  # the usual case: nothing to do (isprintable is False for \n and \t too)
        return text
    return text.replace("\r\n", "\n").translate(_ESCAPES)
