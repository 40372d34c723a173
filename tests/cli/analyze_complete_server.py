"""The scripted OpenAI-compatible server of the analyze/complete CLI tests (real HTTP and SSE,
both ``/chat/completions`` for the review and ``/completions`` for raw FIM prompts), and helpers."""

from __future__ import annotations

import os
import subprocess
import sys

from local_servers import ScriptedOpenAIServer, free_port


def scripted_server() -> ScriptedOpenAIServer:
    """The scripted model of these tests: 4 characters an event, nothing once the script runs out."""
    return ScriptedOpenAIServer(default="", chunk=4)


def dead_url() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/v1"


def codeloop(*args: str, stdin: str | None = None, timeout: float = 120, cwd: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip
