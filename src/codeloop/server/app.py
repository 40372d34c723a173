"""The HTTP face: a FastAPI app over the sandbox, the agent and the history (no logic of its own).

Routes (the contract, documented in docs/server.md): sessions (create, run, info, delete), tasks
as a Server-Sent Events stream of the agent's events, the history (list, show, ``.ipynb``), the
web page at ``/`` and ``/healthz``. Every ``/v1`` route needs a bearer token when the server has
tokens; each token only ever sees its own sessions and its own history.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

import codeloop
from codeloop.agent import Limits
from codeloop.errors import CodeloopError, ConfigError, HistoryError, SandboxError
from codeloop.server.auth import LOCAL_OWNER, BodyLimit, BrowserGuard, TokenAuth
from codeloop.server.models import ModelChooser
from codeloop.server.sessions import SessionLimitReached, SessionOptions, SessionRegistry, UnknownSession
from codeloop.server.tasks import TaskRunner, result_to_dict

__all__ = ["ServerSettings", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class ServerSettings:
    """Everything ``codeloop serve`` can set; the defaults suit one user on loopback."""

    tokens: list[str] = field(default_factory=list)
    max_sessions: int = 64
    max_sessions_per_token: int | None = None  # None: no per-token cap below max_sessions
    idle_timeout: float = 600.0
    max_body: int = 1 << 20  # bytes per request body
    max_tasks: int = 4  # agent tasks running at once
    max_cell_timeout: float = 300.0
    max_memory_mb: int = 4096
    allow_network: bool = False
    model: str | None = None  # the default model for tasks (None: codeloop's default)
    base_url: str | None = None
    allowed_models: list[str] = field(default_factory=list)
    history: bool = True  # store tasks in the history
    task_limits: Limits = field(default_factory=Limits)
    #: how sessions are made (tests and benchmarks keep the default: a real Sandbox)
    session_factory: Callable[[SessionOptions], Any] | None = None


# -- request bodies ----------------------------------------------------------------------------


class SessionRequest(BaseModel):
    timeout: float = Field(30.0, description="seconds per cell unless a run says otherwise")
    memory_mb: int = Field(1024, description="address-space limit of the session's worker")
    network: bool = Field(False, description="network access (only if the server allows it)")


class RunRequest(BaseModel):
    code: str = Field(..., description="the Python cell to run")
    timeout: float | None = Field(None, description="seconds for this cell (default: the session's)")


class TaskRequest(BaseModel):
    task: str = Field(..., description="what to compute, in plain language")
    model: str | None = Field(None, description="a model the server offers (default: the server's)")
    max_steps: int | None = Field(None, ge=1, le=20, description="most cells for this task")
    timeout: float | None = Field(None, gt=0, description="seconds for the whole task")


# -- the app -----------------------------------------------------------------------------------


def _history_path(owner: str) -> Path:
    """The caller's history: the user's own on a loopback server without tokens, else one per token."""
    from codeloop.config import user_dir
    from codeloop.store import default_path

    if owner == LOCAL_OWNER:
        return default_path()
    directory = user_dir() / "server" / owner
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "history.db"


class _State:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.auth = TokenAuth(settings.tokens)
        kwargs: dict[str, Any] = {
            "max_sessions": settings.max_sessions,
            "max_per_owner": settings.max_sessions_per_token,
            "idle_timeout": settings.idle_timeout,
        }
        if settings.session_factory is not None:
            kwargs["factory"] = settings.session_factory
        self.sessions = SessionRegistry(**kwargs)
        self.models = ModelChooser(
            settings.model, base_url=settings.base_url, allowed=settings.allowed_models
        )
        # Cells run in worker threads: enough of them that every live session can run at once.
        self.limiter = anyio.CapacityLimiter(settings.max_sessions + 8)
        self.tasks: set[TaskRunner] = set()
        self.tasks_lock = threading.Lock()

    def task_done(self, runner: TaskRunner) -> None:
        with self.tasks_lock:
            self.tasks.discard(runner)


def _owner(request: Request) -> str:
    """The caller's owner name (a dependency of every /v1 route); 401 without a valid token."""
    state: _State = request.app.state.codeloop
    who = state.auth.owner(request.headers.get("authorization"))
    if who is None:
        raise HTTPException(
            status_code=401,
            detail="a valid token is required: send 'Authorization: Bearer TOKEN'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return who


Owner = Annotated[str, Depends(_owner)]


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app; ``uvicorn.run(create_app(...))`` serves it (``codeloop serve`` does)."""
    state = _State(settings or ServerSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(_reap_forever(state))
        try:
            yield
        finally:
            reaper.cancel()
            with state.tasks_lock:
                running = list(state.tasks)
            for runner in running:
                runner.stop()
            await anyio.to_thread.run_sync(state.sessions.close_all)
            for runner in running:
                await anyio.to_thread.run_sync(runner.join, 10.0)

    app = FastAPI(
        title="codeloop",
        version=codeloop.__version__,
        description="An LLM code interpreter for Python: sandbox sessions, agent tasks, history.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN; the page must work offline (schema: /openapi.json)
        redoc_url=None,
    )
    app.state.codeloop = state
    app.add_middleware(BodyLimit, max_bytes=state.settings.max_body)
    app.add_middleware(BrowserGuard, check_host=not state.auth.required)

    async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=state.limiter)

    @app.exception_handler(CodeloopError)
    async def codeloop_error(request: Request, exc: CodeloopError) -> JSONResponse:
        if isinstance(exc, UnknownSession):
            status = 404
        elif isinstance(exc, SessionLimitReached):
            status = 429
        elif isinstance(exc, ConfigError):
            status = 400
        elif isinstance(exc, SandboxError):
            status = 503
        elif isinstance(exc, HistoryError):
            status = 500  # the database itself (locked, corrupt): a missing run is a 404 above
        else:
            status = 500
        return JSONResponse({"detail": str(exc)}, status_code=status)

    # -- health and the page -----------------------------------------------------------------

    @app.get("/healthz", tags=["server"])
    async def healthz() -> dict[str, Any]:
        """Liveness: always 200 while the server runs (no token needed)."""
        return {"ok": True, "version": codeloop.__version__, "token_required": state.auth.required}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # -- sessions ----------------------------------------------------------------------------

    @app.post("/v1/sessions", tags=["sessions"], status_code=201)
    async def create_session(who: Owner, body: SessionRequest | None = None) -> dict[str, Any]:
        """Start a stateful sandbox session; its id is what ``run`` takes."""
        s = state.settings
        options = SessionOptions(**(body or SessionRequest.model_validate({})).model_dump()).checked(
            max_timeout=s.max_cell_timeout, max_memory_mb=s.max_memory_mb, allow_network=s.allow_network
        )
        session = await in_thread(state.sessions.create, who, options)
        return {"id": session.id, **session.info()}

    @app.get("/v1/sessions", tags=["sessions"])
    async def list_sessions(who: Owner) -> list[dict[str, Any]]:
        """The caller's live sessions."""
        return [s.info() for s in state.sessions.owned_by(who)]

    @app.post("/v1/sessions/{session_id}/run", tags=["sessions"])
    async def run_cell(session_id: str, body: RunRequest, who: Owner) -> dict[str, Any]:
        """Run one cell; the result is the object ``codeloop exec --json`` prints (figures base64 PNG)."""
        state.sessions.get(who, session_id)  # 404 before any work
        timeout = body.timeout
        if timeout is not None and not 0 < timeout <= state.settings.max_cell_timeout:
            raise ConfigError(f"timeout must be between 0 and {state.settings.max_cell_timeout:g} seconds")
        result = await in_thread(state.sessions.run, who, session_id, body.code, timeout)
        return dict(result.to_dict())

    @app.get("/v1/sessions/{session_id}", tags=["sessions"])
    async def session_info(session_id: str, who: Owner) -> dict[str, Any]:
        """A session's options, isolation layers, run count and idle time."""
        return state.sessions.get(who, session_id).info()

    @app.delete("/v1/sessions/{session_id}", tags=["sessions"], status_code=204)
    async def delete_session(session_id: str, who: Owner) -> Response:
        """Close the session: its worker stops and its directory is removed."""
        await in_thread(state.sessions.delete, who, session_id)
        return Response(status_code=204)

    # -- tasks -------------------------------------------------------------------------------

    @app.post("/v1/tasks", tags=["tasks"], response_class=StreamingResponse)
    async def run_task(body: TaskRequest, who: Owner) -> StreamingResponse:
        """Solve a task with the agent; a Server-Sent Events stream of its events (see docs/server.md)."""
        name = state.models.check(body.model)  # 400 now, not mid-stream
        limits = state.settings.task_limits
        if body.max_steps is not None or body.timeout is not None:
            limits = Limits(
                max_steps=body.max_steps or limits.max_steps,
                max_tokens=limits.max_tokens,
                max_seconds=min(body.timeout or limits.max_seconds, limits.max_seconds),
                cell_timeout=limits.cell_timeout,
                reply_tokens=limits.reply_tokens,
            )
        runner = TaskRunner(
            lambda: state.models.load(name),
            body.task,
            limits=limits,
            history_path=_history_path(who) if state.settings.history else None,
            on_finish=state.task_done,
        )
        with state.tasks_lock:
            if len(state.tasks) >= state.settings.max_tasks:
                raise HTTPException(429, f"{state.settings.max_tasks} tasks are already running: retry later")
            state.tasks.add(runner)
        runner.start()

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for event in runner.events():
                    yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
            finally:
                # The client went away (the stop button) or the run ended (idempotent). The task
                # keeps its slot until its thread has wound down (on_finish).
                runner.stop()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- workflows (analyze, complete, fix): one route each, present when the workflow is ----------

    from codeloop.server.workflow_routes import workflow_router

    app.include_router(workflow_router(state.models.load, in_thread, Depends(_owner)))

    # -- history -----------------------------------------------------------------------------

    def _open_history(who: str) -> Any:
        from codeloop.store import History

        return History(_history_path(who))

    def _list(who: str, limit: int) -> list[dict[str, Any]]:
        with _open_history(who) as history:
            return [dict(r.__dict__) for r in history.list(limit)]

    def _load(who: str, conversation_id: int) -> Any:
        with _open_history(who) as history:
            try:
                return history.load(conversation_id), history.figures_dir
            except HistoryError as e:  # no such run for this caller (or its row is unreadable)
                raise HTTPException(404, str(e)) from e

    @app.get("/v1/history", tags=["history"])
    async def history_list(who: Owner, limit: int = 50) -> list[dict[str, Any]]:
        """The caller's latest runs and chats, newest first."""
        return list(await in_thread(_list, who, max(1, min(limit, 500))))

    @app.get("/v1/history/{conversation_id}.ipynb", tags=["history"])
    async def history_notebook(conversation_id: int, who: Owner) -> Response:
        """A stored run or chat as a Jupyter notebook (nbformat 4) that re-executes cleanly."""
        import nbformat

        from codeloop.store import to_notebook

        conv, figures_dir = await in_thread(_load, who, conversation_id)
        _confine_figures(conv.turns, figures_dir)
        text = nbformat.writes(to_notebook(conv.turns, title=conv.title))
        return Response(
            text,
            media_type="application/x-ipynb+json",
            headers={"Content-Disposition": f'attachment; filename="codeloop-{conversation_id}.ipynb"'},
        )

    @app.get("/v1/history/{conversation_id}", tags=["history"])
    async def history_show(conversation_id: int, who: Owner) -> dict[str, Any]:
        """One stored run or chat with every turn (as ``codeloop history show --json``, figures base64)."""
        conv, figures_dir = await in_thread(_load, who, conversation_id)
        _confine_figures(conv.turns, figures_dir)
        data = {k: v for k, v in conv.__dict__.items() if k != "turns"}
        data["turns"] = [result_to_dict(t) for t in conv.turns]
        return data

    return app


def _confine_figures(turns: list[Any], figures_dir: Path) -> None:
    """Forget figure paths outside the history's own figures directory (never read other files)."""
    root = os.path.realpath(figures_dir)
    for turn in turns:
        for fig in turn.figures:
            if fig.path is None:
                continue
            real = os.path.realpath(fig.path)
            if os.path.commonpath([root, real]) != root:
                fig.path = None


async def _reap_forever(state: _State) -> None:
    period = min(30.0, max(0.5, state.settings.idle_timeout / 4))
    while True:
        await asyncio.sleep(period)
        await anyio.to_thread.run_sync(state.sessions.reap)
