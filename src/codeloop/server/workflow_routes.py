"""``POST /v1/analyze``, ``/v1/complete`` and ``/v1/fix``: one route per developer workflow.

Each route is one call to the workflow's Python API (``codeloop.workflows.*``) and is added only
when that workflow is installed. Files a client sends are written into a directory this server
creates for the request and removes afterwards; the answer is the workflow's own ``to_dict()``
(what its ``--json`` prints), with that directory's path taken out.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from codeloop.errors import ConfigError

__all__ = ["available_workflows", "workflow_router"]

MAX_FILES = 200


def available_workflows() -> list[str]:
    """The workflows installed here, by route name."""
    found = []
    for name in ("analyze", "complete", "fix"):
        try:
            if importlib.util.find_spec(f"codeloop.workflows.{name}") is not None:
                found.append(name)
        except ModuleNotFoundError:
            pass
    return found


class FilesRequest(BaseModel):
    files: dict[str, str] = Field(..., description="relative path -> file text (Python sources, tests)")


class AnalyzeRequest(FilesRequest):
    review: bool = Field(False, description="add the model's review of the worst files")
    model: str | None = Field(None, description="a model the server offers (with review)")


class CompleteRequest(BaseModel):
    source: str = Field(..., description="the file's text")
    line: int = Field(..., ge=1, description="1-based line of the cursor")
    col: int = Field(..., ge=0, description="0-based column of the cursor")
    lines: int = Field(1, ge=1, le=50, description="most lines to complete")
    model: str | None = None


class FixRequest(FilesRequest):
    test: str = Field("python -m pytest -q", description="the test command, run in the sandbox")
    rounds: int = Field(4, ge=1, le=10)
    model: str | None = None


def _write_files(files: dict[str, str], directory: Path) -> None:
    """Write the client's files under ``directory`` (which this server created): relative names only."""
    if not files:
        raise ConfigError("give at least one file in 'files'")
    if len(files) > MAX_FILES:
        raise ConfigError(f"at most {MAX_FILES} files per request")
    for name, text in files.items():
        path = PurePosixPath(name)
        if (
            not name
            or path.is_absolute()
            or any(part in ("", ".", "..") for part in path.parts)
            or "\\" in name
        ):
            raise ConfigError(f"file names must be relative paths without '..': {name!r}")
        target = directory.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as f:  # "x": never over anything that exists
            f.write(text)


def _relative(value: Any, prefix: str) -> Any:
    """``value`` with the request directory's path taken out of every string in it."""
    if isinstance(value, str):
        return value.replace(prefix + "/", "").replace(prefix, ".")
    if isinstance(value, list):
        return [_relative(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: _relative(v, prefix) for k, v in value.items()}
    return value


def _in_project(files: dict[str, str], work: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="codeloop-request-"))
    try:
        _write_files(files, directory)
        return dict(_relative(work(directory), str(directory)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def workflow_router(
    load_model: Callable[[str | None], Any], run_in_thread: Callable[..., Any], auth: Any
) -> APIRouter:
    """The routes of the workflows installed here; ``auth`` (a ``Depends``) guards each of them."""
    router = APIRouter(tags=["workflows"], dependencies=[auth])
    present = available_workflows()

    def user_error(e: Exception) -> HTTPException:
        return HTTPException(status_code=400, detail=str(e))

    if "analyze" in present:
        from codeloop.workflows import analyze as analyze_mod

        @router.post("/v1/analyze")
        async def analyze(body: AnalyzeRequest) -> dict[str, Any]:
            """Static analysis of the files (structure, ruff, radon), optionally with the model's review."""

            def work(directory: Path) -> dict[str, Any]:
                model = load_model(body.model) if body.review else None
                return dict(analyze_mod.analyze([directory], model=model).to_dict())

            try:
                return dict(await run_in_thread(_in_project, body.files, work))
            except analyze_mod.AnalyzeError as e:
                raise user_error(e) from e

    if "complete" in present:
        from codeloop.workflows import complete as complete_mod

        @router.post("/v1/complete")
        async def complete(body: CompleteRequest) -> dict[str, Any]:
            """Code completion at the cursor (fill-in-the-middle), as ``codeloop complete --json``."""

            def work() -> dict[str, Any]:
                model = load_model(body.model)
                return dict(
                    complete_mod.complete(model, body.source, body.line, body.col, lines=body.lines).to_dict()
                )

            try:
                return dict(await run_in_thread(work))
            except complete_mod.CompleteError as e:
                raise user_error(e) from e

    if "fix" in present:
        from codeloop.workflows import fix as fix_mod
        from codeloop.workflows.snapshot import InputError

        @router.post("/v1/fix")
        async def fix(body: FixRequest) -> dict[str, Any]:
            """Repair the files until the test command passes, on a copy in the sandbox; the answer holds the diff."""

            def work(directory: Path) -> dict[str, Any]:
                result = fix_mod.fix(
                    [directory], root=directory, test=body.test, rounds=body.rounds,
                    model=lambda: load_model(body.model), write=False,
                )  # fmt: skip
                return dict(result.to_dict())

            try:
                return dict(await run_in_thread(_in_project, body.files, work))
            except InputError as e:
                raise user_error(e) from e

    return router
