"""``%load_ext codeloop`` in a real IPython kernel started by jupyter_client; the messages it sends."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from local_servers import ScriptedOpenAIServer

pytestmark = pytest.mark.timeout(300)


class Kernel:
    """A started ipykernel and a blocking client; ``run(code)`` returns the iopub messages of one cell."""

    def __init__(self, home: Path) -> None:
        self.km = KernelManager(kernel_name="python3")
        env = {**os.environ, "CODELOOP_HOME": str(home)}
        self.km.kernel_spec.argv[0] = sys.executable  # this venv's interpreter, whatever the spec says
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 120) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.kc.execute(code)
        messages = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        return reply["content"], messages

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m["content"] for m in messages if m["msg_type"] == kind]


def stream_text(messages: list[dict[str, Any]], name: str) -> str:
    return "".join(c["text"] for c in of_type(messages, "stream") if c["name"] == name)


@pytest.fixture
def kernel(codeloop_home: Path) -> Iterator[Kernel]:
    k = Kernel(codeloop_home)
    try:
        reply, _ = k.run("%load_ext codeloop")
        assert reply["status"] == "ok", reply
        yield k
    finally:
        k.close()


def test_codeloop_exec_runs_in_the_sandbox_not_the_kernel(kernel: Kernel) -> None:
    reply, messages = kernel.run("%codeloop_exec import os; secret = 41; print('pid', os.getpid())")
    assert reply["status"] == "ok"
    assert stream_text(messages, "stdout").startswith("pid ")
    reply, messages = kernel.run("%%codeloop_exec\nsecret + 1")
    assert reply["status"] == "ok"
    assert of_type(messages, "execute_result")[0]["data"]["text/plain"] == "42"
    # the kernel itself never saw the variable
    reply, messages = kernel.run("'secret' in globals()")
    assert of_type(messages, "execute_result")[0]["data"]["text/plain"] == "False"

    reply, messages = kernel.run("%%codeloop_exec\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9])")
    images = [c for c in of_type(messages, "display_data") if "image/png" in c["data"]]
    assert reply["status"] == "ok" and len(images) == 1
    assert base64.b64decode(images[0]["data"]["image/png"]).startswith(b"\x89PNG")

    reply, messages = kernel.run("%%codeloop_exec\ndef f():\n    return undefined_name\nf()")
    assert reply["status"] == "error" and reply["ename"] == "SandboxCellError"
    traceback = "\n".join(of_type(messages, "error")[0]["traceback"])
    assert "NameError" in traceback and "return undefined_name" in traceback

    reply, messages = kernel.run("%%codeloop_exec --timeout 1\nwhile True:\n    pass")
    assert reply["status"] == "error"
    assert "timeout" in "\n".join(of_type(messages, "error")[0]["traceback"])
    reply, messages = kernel.run("%codeloop_reset")
    assert "reset" in stream_text(messages, "stdout")
    reply, messages = kernel.run("%codeloop_exec 'secret' in globals()")
    assert of_type(messages, "execute_result")[0]["data"]["text/plain"] == "False"


def test_codeloop_cell_magic_solves_a_task(kernel: Kernel) -> None:
    scripted = ScriptedOpenAIServer()
    scripted.replies = [
        "```python\nimport matplotlib.pyplot as plt\nplt.plot([0, 1], [0, 1])\ntotal = sum(range(1, 11))\nprint(total)\n```",
        "The total is 55.",
    ]
    try:
        reply, messages = kernel.run(
            f"%%codeloop --model scripted --base-url {scripted.base_url} --max-steps 3\n"
            "What is the sum of 1..10? Also draw a line."
        )
    finally:
        scripted.close()
    assert reply["status"] == "ok", reply
    displays = of_type(messages, "display_data")
    markdown = "\n".join(d["data"].get("text/markdown", "") for d in displays)
    assert "total = sum(range(1, 11))" in markdown and "55" in markdown
    assert any("image/png" in d["data"] for d in displays)
    result = of_type(messages, "execute_result")[0]["data"]
    assert (
        result["text/plain"] == "The total is 55."
        and result["text/markdown"] == "**Answer:** The total is 55."
    )
    # the agent's sandbox is the one %codeloop_exec uses: its variables are there
    reply, messages = kernel.run("%codeloop_exec total")
    assert of_type(messages, "execute_result")[0]["data"]["text/plain"] == "55"
    reply, messages = kernel.run("_codeloop.status.value, len(_codeloop.steps)")
    assert of_type(messages, "execute_result")[0]["data"]["text/plain"] == "('answered', 2)"


def test_bad_magic_options_are_reported(kernel: Kernel) -> None:
    reply, messages = kernel.run("%%codeloop --model no-such-model\nWhat is 1+1?")
    assert "unknown model 'no-such-model'" in stream_text(messages, "stderr")
    reply, messages = kernel.run("%%codeloop --timeout -5\nWhat is 1+1?")
    assert "codeloop: max_seconds must be a positive number" in stream_text(messages, "stderr")
    reply, messages = kernel.run("%%codeloop --timeout soon\nWhat is 1+1?")
    assert reply["status"] == "error" and "invalid float value" in reply["evalue"]
