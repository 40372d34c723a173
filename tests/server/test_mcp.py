"""``codeloop mcp`` as a subprocess, driven over stdio by the official MCP SDK's own client."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, ImageContent, TextContent

from local_servers import ScriptedOpenAIServer, free_port, wait_until_answering


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def params(home: Path, *args: str) -> StdioServerParameters:
    env = {"CODELOOP_HOME": str(home)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return StdioServerParameters(command=sys.executable, args=["-m", "codeloop", "mcp", *args], env=env)


def _has(workflow: str) -> bool:
    try:
        return importlib.util.find_spec(f"codeloop.workflows.{workflow}") is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(
    not (_has("analyze") and _has("fix")), reason="the analyze and fix workflows are not in this tree"
)
def test_workflow_tools_call_their_workflows(codeloop_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "stats.py").write_text("import os\n\n\ndef mean(xs):\n    return sum(xs) / (len(xs) - 1)\n")
    (project / "test_stats.py").write_text(
        "from stats import mean\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n"
    )
    scripted = ScriptedOpenAIServer()
    scripted.replies = ["```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```"] * 6
    try:

        async def session() -> tuple[CallToolResult, CallToolResult]:
            args = ("--model", "scripted", "--base-url", scripted.base_url)
            async with Client(params(codeloop_home, *args), read_timeout_seconds=300) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"analyze", "fix"} <= names
                analysed = await client.call_tool("analyze", {"paths": [str(project / "stats.py")]})
                fixed = await client.call_tool("fix", {"paths": [str(project / "stats.py")], "rounds": 2})
                return analysed, fixed

        analysed, fixed = asyncio.run(session())
    finally:
        scripted.close()
    report = json.loads(text_of(analysed))
    assert not analysed.is_error and any("stats.py" in f["path"] for f in report["findings"])
    assert not fixed.is_error, text_of(fixed)
    assert "+    return sum(xs) / len(xs)" in json.loads(text_of(fixed))["diff"]
    assert "(len(xs) - 1)" in (project / "stats.py").read_text()  # fix answers with a diff, never writes


def test_run_python_over_stdio_keeps_state_returns_figures_and_errors(codeloop_home: Path) -> None:
    async def session() -> None:
        async with Client(params(codeloop_home, "--timeout", "20"), read_timeout_seconds=120) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"run_python", "reset_session", "solve_task"} <= set(tools)
            assert set(tools["run_python"].input_schema["properties"]) >= {"code", "session_id"}
            assert "ctx" not in tools["run_python"].input_schema["properties"]

            first = await client.call_tool("run_python", {"code": "x = 20\nprint('set')"})
            assert not first.is_error and text_of(first) == "set"
            second = await client.call_tool("run_python", {"code": "x + 22"})
            assert not second.is_error and "42" in text_of(second)  # the default session kept x

            # a named session is a separate interpreter
            other = await client.call_tool(
                "run_python", {"code": "'x' in globals()", "session_id": "scratch"}
            )
            assert "False" in text_of(other)

            figure = await client.call_tool(
                "run_python", {"code": "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.title('t')"}
            )
            images = [c for c in figure.content if isinstance(c, ImageContent)]
            assert not figure.is_error and len(images) == 1 and images[0].mime_type == "image/png"
            assert base64.b64decode(images[0].data).startswith(b"\x89PNG\r\n\x1a\n")

            error = await client.call_tool("run_python", {"code": "def f():\n    return 1 / 0\nf()"})
            assert error.is_error is True
            assert "ZeroDivisionError" in text_of(error) and "Traceback" in text_of(error)
            assert "return 1 / 0" in text_of(error)

            slow = await client.call_tool("run_python", {"code": "while True:\n    pass", "timeout": 1})
            assert slow.is_error is True and "timeout" in text_of(slow)
            assert "state was lost" in text_of(slow) or "restarted" in text_of(slow)

            again = await client.call_tool("run_python", {"code": "y = 5\ny * 2"})
            assert not again.is_error and "10" in text_of(again)
            reset = await client.call_tool("reset_session", {})
            assert "was reset" in text_of(reset)
            fresh = await client.call_tool("run_python", {"code": "'y' in globals()"})
            assert "False" in text_of(fresh)

            bad = await client.call_tool("run_python", {"code": "1", "timeout": -3})
            assert bad.is_error is True and "timeout" in text_of(bad)

    asyncio.run(session())


def test_solve_task_runs_the_agent_loop(codeloop_home: Path) -> None:
    scripted = ScriptedOpenAIServer()
    scripted.replies = [
        "```python\nimport matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\nprint(sum(range(10)))\n```",
        "The sum is 45.",
    ]
    try:

        async def session() -> Any:
            args = ("--model", "scripted", "--base-url", scripted.base_url)
            async with Client(params(codeloop_home, *args), read_timeout_seconds=120) as client:
                return await client.call_tool(
                    "solve_task", {"task": "What is the sum of 0..9? Draw a bar chart."}
                )

        result = asyncio.run(session())
    finally:
        scripted.close()
    text = text_of(result)
    assert not result.is_error, text
    assert text.startswith("Answer: The sum is 45.") and "print(sum(range(10)))" in text and "45" in text
    assert any(isinstance(c, ImageContent) for c in result.content)


@pytest.mark.slow
def test_streamable_http_needs_its_token(codeloop_home: Path) -> None:
    port = free_port()
    token = "mcp-token-123456"
    proc = subprocess.Popen(
        [sys.executable, "-m", "codeloop", "mcp", "--http", "--port", str(port), "--token", token],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        wait_until_answering(url, proc, 60)
        refused = httpx.post(url, json={})
        assert refused.status_code == 401

        async def session() -> str:
            http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
            from mcp.client.streamable_http import streamable_http_client

            async with (
                http,
                Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as c,
            ):
                await c.call_tool("run_python", {"code": "z = 7"})
                return text_of(await c.call_tool("run_python", {"code": "z * 6"}))

        assert "42" in asyncio.run(session())
    finally:
        proc.terminate()
        proc.wait(30)
        assert proc.stderr is not None
        proc.stderr.close()
