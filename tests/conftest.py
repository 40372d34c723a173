"""Fixtures shared by test directories: the default model assembled once per session.

``default_ready`` needs a ``codeloop_home`` fixture; each directory that uses it defines its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeloop.llm.assemble import prepare
from codeloop.llm.catalog import QWEN_05B


@pytest.fixture(scope="session")
def assembled_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default GGUF assembled and verified once per session (a real assembly, ~2 s)."""
    home = tmp_path_factory.mktemp("assembled-home")
    old = os.environ.get("CODELOOP_HOME")
    os.environ["CODELOOP_HOME"] = str(home)
    try:
        path = prepare(QWEN_05B)
    finally:
        if old is None:
            os.environ.pop("CODELOOP_HOME", None)
        else:
            os.environ["CODELOOP_HOME"] = old
    yield path
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def default_ready(assembled_default: Path, codeloop_home: Path) -> Path:
    """The assembled default hard-linked into this test's user dir (same inode: the stamp stays valid).

    Never change the linked file's metadata in a test (it is shared); replace files instead.
    """
    models = codeloop_home / "models"
    models.mkdir(exist_ok=True)
    os.link(assembled_default, models / assembled_default.name)
    stamp = assembled_default.name + ".verified.json"
    shutil.copyfile(assembled_default.with_name(stamp), models / stamp)
    return models / assembled_default.name
