"""How the workflow verbs (``codeloop fix``, ``codeloop debug``) report an error and exit."""

from __future__ import annotations

import json
import sys

from codeloop.errors import CodeloopError
from codeloop.workflows.snapshot import InputError

__all__ = ["report_error"]


def report_error(verb: str, error: CodeloopError, *, as_json: bool) -> int:
    """Print ``error`` (also as one JSON object on stdout with ``--json``); the exit status.

    2 for a user mistake (:class:`InputError`: ``"kind": "input"``), 1 for anything else (the
    error class as ``kind``: a model or sandbox failure).
    """
    mistake = isinstance(error, InputError)
    if as_json:
        print(json.dumps({"error": str(error), "kind": "input" if mistake else type(error).__name__}))
    print(f"codeloop {verb}: error: {error}", file=sys.stderr)
    return 2 if mistake else 1
