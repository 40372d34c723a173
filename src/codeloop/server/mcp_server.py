"""The MCP face: ``codeloop mcp`` serves tools over stdio (default) or streamable HTTP.

Tools: ``run_python`` (stateful: calls on one connection without ``session_id`` share one
default session, a named ``session_id`` gets a session of its own), ``reset_session``,
``solve_task`` (the agent loop). Built on the official SDK's ``MCPServer``; the sandbox, the agent
and the history do the work.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent

from codeloop.agent import Limits
from codeloop.errors import CodeloopError
from codeloop.server.models import ModelChooser
from codeloop.server.results import agent_text, run_text
from codeloop.server.sessions import SessionOptions, SessionRegistry, UnknownSession
from codeloop.server.tasks import TaskRunner

__all__ = ["build_mcp_server"]

INSTRUCTIONS = (
    "codeloop runs Python in a local, isolated sandbox. Use run_python to execute code: state "
    "(variables, imports) persists between calls of one connection; matplotlib figures come back as "
    "images. Use solve_task to have codeloop's own model write and run the code and answer."
)


def _connection_key(ctx: Context[Any, Any] | None) -> str:
    """Which connection a call came on. Over stdio a process serves exactly one client, so that is
    one connection; over HTTP it is the client's ``Mcp-Session-Id`` (else one shared key)."""
    headers = ctx.headers if ctx is not None else None
    if headers is None:
        return "stdio"
    session = headers.get("mcp-session-id") or headers.get("Mcp-Session-Id")
    return f"http:{session}" if session else "http"


class _Faces:
    """The state behind the tools: sessions per (connection, name), the model, the history."""

    def __init__(
        self,
        *,
        model: str | None,
        base_url: str | None,
        timeout: float,
        history: bool,
        max_sessions: int,
        idle_timeout: float,
    ) -> None:
        self.sessions = SessionRegistry(max_sessions=max_sessions, idle_timeout=idle_timeout)
        self.models = ModelChooser(model, base_url=base_url)
        self.options = SessionOptions(timeout=timeout)
        self.history = history
        self.names: dict[tuple[str, str], str] = {}  # (connection, name) -> registry id
        self.lock = anyio.Lock()

    async def session_for(self, connection: str, name: str) -> str:
        async with self.lock:
            sid = self.names.get((connection, name))
            if sid is not None:
                try:
                    self.sessions.get(connection, sid)
                    return sid
                except UnknownSession:  # reaped after idling: start again (the result says so)
                    del self.names[(connection, name)]
            session = await anyio.to_thread.run_sync(self.sessions.create, connection, self.options)
            self.names[(connection, name)] = session.id
            return session.id

    async def reset(self, connection: str, name: str) -> bool:
        async with self.lock:
            sid = self.names.pop((connection, name), None)
        if sid is None:
            return False
        try:
            await anyio.to_thread.run_sync(self.sessions.delete, connection, sid)
        except UnknownSession:
            return False
        return True


def build_mcp_server(
    *,
    model: str | None = None,
    base_url: str | None = None,
    timeout: float = 30.0,
    history: bool = True,
    max_sessions: int = 16,
    idle_timeout: float = 3600.0,
) -> MCPServer[Any]:
    """An ``MCPServer`` with codeloop's tools; ``.run()`` serves it on stdio."""
    faces = _Faces(
        model=model,
        base_url=base_url,
        timeout=timeout,
        history=history,
        max_sessions=max_sessions,
        idle_timeout=idle_timeout,
    )

    @asynccontextmanager
    async def lifespan(server: MCPServer[Any]) -> AsyncIterator[None]:
        async def reap_forever() -> None:
            while True:
                await anyio.sleep(min(60.0, max(0.5, idle_timeout / 4)))
                await anyio.to_thread.run_sync(faces.sessions.reap)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(reap_forever)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(faces.sessions.close_all)

    import codeloop

    mcp: MCPServer[Any] = MCPServer(
        "codeloop", instructions=INSTRUCTIONS, version=codeloop.__version__, lifespan=lifespan
    )

    @mcp.tool()
    async def run_python(
        code: str,
        session_id: str | None = None,
        timeout: float | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Run Python code in a persistent sandbox session and return its output, value and figures.

        Variables and imports persist between calls with the same session_id (calls without one
        share this connection's default session). A failing cell returns an error with the traceback.
        """
        connection = _connection_key(ctx)
        if timeout is not None and not 0 < timeout <= 600:
            return _error(f"timeout must be between 0 and 600 seconds, got {timeout}")
        try:
            sid = await faces.session_for(connection, session_id or "default")
            result = await anyio.to_thread.run_sync(faces.sessions.run, connection, sid, code, timeout)
        except CodeloopError as e:
            return _error(str(e))
        content: list[ContentBlock] = [TextContent(type="text", text=run_text(result))]
        content += [_image(png) for png in result.figures]
        return CallToolResult(content=content, is_error=not result.ok)

    @mcp.tool()
    async def reset_session(session_id: str | None = None, ctx: Context[Any, Any] | None = None) -> str:
        """Forget a session's variables and files: the next run_python starts from a fresh interpreter."""
        closed = await faces.reset(_connection_key(ctx), session_id or "default")
        name = session_id or "the default session"
        return f"{name} was reset" if closed else f"{name} had no state to reset"

    @mcp.tool()
    async def solve_task(task: str, ctx: Context[Any, Any] | None = None) -> CallToolResult:
        """Have codeloop's model solve a task by writing and running Python; returns the answer, the code and figures."""
        try:
            name = faces.models.check(None)
            runner = TaskRunner(
                lambda: faces.models.load(name),
                task,
                limits=Limits(),
                history_path=_history_path() if faces.history else None,
            )
        except CodeloopError as e:
            return _error(str(e))
        runner.start()
        error = None
        steps_seen = 0
        try:
            async for event in runner.events():
                if event["type"] == "error":
                    error = event["message"]
                elif event["type"] == "step" and ctx is not None:
                    steps_seen += 1
                    try:
                        await ctx.report_progress(steps_seen, None, f"step {steps_seen} done")
                    except Exception:  # progress is a courtesy; a client without it still gets the result
                        pass
        finally:
            runner.stop()
        if runner.result is None:
            return _error(error or "the task did not run")
        result = runner.result
        content: list[ContentBlock] = [TextContent(type="text", text=agent_text(result))]
        content += [_image(f.png) for f in result.figures if f.png is not None]
        return CallToolResult(content=content, is_error=not result.ok)

    _add_workflow_tools(mcp, faces)
    return mcp


def _add_workflow_tools(mcp: MCPServer[Any], faces: _Faces) -> None:
    """``analyze``, ``fix`` and ``complete``: one call each to the workflow's Python API, when installed.

    They work on files of this machine (the MCP client runs codeloop as the user); ``fix`` never
    writes: it answers with the diff that makes the tests pass.
    """
    import json

    from codeloop.server.workflow_routes import available_workflows

    present = available_workflows()

    def as_json(data: dict[str, Any]) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text=json.dumps(data, indent=1))])

    if "analyze" in present:
        from codeloop.workflows import analyze as analyze_mod

        @mcp.tool()
        async def analyze(paths: list[str], review: bool = False) -> CallToolResult:
            """Static analysis of Python files or directories (structure, ruff, radon findings); JSON."""
            try:
                model = faces.models.load(None) if review else None
                report = await anyio.to_thread.run_sync(lambda: analyze_mod.analyze(paths, model=model))
            except CodeloopError as e:
                return _error(str(e))
            return as_json(report.to_dict())

    if "fix" in present:
        from codeloop.workflows import fix as fix_mod

        @mcp.tool()
        async def fix(paths: list[str], test: str = "python -m pytest -q", rounds: int = 4) -> CallToolResult:
            """Repair the Python files until the test command passes (on a copy in the sandbox); returns the diff."""
            try:
                result = await anyio.to_thread.run_sync(
                    lambda: fix_mod.fix(
                        paths, test=test, rounds=rounds, model=lambda: faces.models.load(None)
                    )
                )
            except CodeloopError as e:
                return _error(str(e))
            data = result.to_dict()
            return CallToolResult(
                content=[TextContent(type="text", text=json.dumps(data, indent=1))], is_error=not result.fixed
            )

    if "complete" in present:
        from codeloop.workflows import complete as complete_mod

        @mcp.tool()
        async def complete(source: str, line: int, col: int, lines: int = 1) -> CallToolResult:
            """Code completion at a cursor (1-based line, 0-based column) in the given source text."""
            try:
                model = faces.models.load(None)
                done = await anyio.to_thread.run_sync(
                    lambda: complete_mod.complete(model, source, line, col, lines=lines)
                )
            except CodeloopError as e:
                return _error(str(e))
            return CallToolResult(content=[TextContent(type="text", text=done.completion)])


def _history_path() -> Path:
    from codeloop.store import default_path

    return default_path()


def _image(png: bytes) -> ImageContent:
    return ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mime_type="image/png")


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
