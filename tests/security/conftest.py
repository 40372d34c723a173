"""Fixtures of the hostile-code suite: a fence around the test process, sandboxes, layer checks.

The fence is a memory+pids cgroup holding this pytest process and so every sandbox it starts
(session cgroups nest under it): if a layer fails, a fork or memory bomb hits the fence, not the
host. Where the host offers no cgroups (a degraded run), the caller fences the run instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hostside import SANDBOX_PYTHON

from codeloop import Sandbox
from codeloop.errors import SandboxUnavailable
from codeloop.sandbox.jail import cgroups

FENCE_MEMORY = 4 << 30
FENCE_PIDS = 768



def _own_cgroup_paths() -> dict[str, str]:
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def _remove_cgroup_tree(top: Path) -> None:
    """Kill what is left anywhere under ``top`` and remove its directories bottom-up."""
    for dirpath, _dirnames, _files in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
        with contextlib.suppress(OSError):
            for pid in (Path(dirpath) / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        for _ in range(100):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                import time

                time.sleep(0.01)


#: what lifts the fence; run after the suite's last test (pytest_runtest_teardown below)
_LIFT_FENCE: list[Callable[[], None]] = []


@pytest.fixture(scope="session", autouse=True)
def fence() -> Iterator[str]:
    """Move this pytest process into a memory+pids cgroup while the hostile suite runs.

    The fence comes off after the last test of tests/security (not at the end of the whole
    run), so later tests that legitimately need more memory, such as loading a model into
    transformers, are not killed by a fence meant for bombs.
    """
    root, why = cgroups.find_root()
    if root is None:
        yield f"no fence here ({why}); the caller must fence this run"
        return
    before = _own_cgroup_paths()
    group = cgroups.SessionCgroup.create(root, FENCE_MEMORY, FENCE_PIDS)
    for d in group.dirs.values():
        (d / "cgroup.procs").write_text(str(os.getpid()))

    def lift() -> None:
        for key, mount in root.mounts.items():
            rel = before.get(key if root.version == 1 else "", "/").lstrip("/")
            with contextlib.suppress(OSError):
                (mount / rel / "cgroup.procs").write_text(str(os.getpid()))

    _LIFT_FENCE.append(lift)
    try:
        yield f"fenced in {sorted(str(d) for d in group.dirs.values())}"
    finally:
        while _LIFT_FENCE:
            _LIFT_FENCE.pop()()
        for d in group.dirs.values():
            _remove_cgroup_tree(d)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the hostile suite's last test, move this process back out of the fence."""
    here = Path(__file__).resolve().parent
    if nextitem is None or here not in Path(str(nextitem.path)).resolve().parents:
        while _LIFT_FENCE:
            _LIFT_FENCE.pop()()


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def token() -> str:
    """A fresh secret the sandbox must never see (or a marker the host searches for)."""
    return "tok" + secrets.token_hex(12)


@pytest.fixture
def open_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes (short timeout, no pool) and close every one of them at the end."""
    opened: list[Sandbox] = []

    def start(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("memory_mb", 512)
        kwargs.setdefault("prestart", False)
        for key, value in SANDBOX_PYTHON.items():
            kwargs.setdefault(key, value)
        sb = Sandbox(**kwargs)
        opened.append(sb)
        return sb

    yield start
    for sb in opened:
        sb.close()


@pytest.fixture(scope="session")
def layers(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bool], list[str]]:
    """The isolation layers this host gives a default session, and the notes on missing ones."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODELOOP_HOME", str(tmp_path_factory.mktemp("layers-home")))
        with Sandbox(prestart=False, **SANDBOX_PYTHON) as sb:
            return sb.isolation, sb.isolation_notes


@pytest.fixture
def need(layers: tuple[dict[str, bool], list[str]]) -> Callable[..., None]:
    """need(a, b): go on if layer a or b is active; else check the sandbox refuses, then skip.

    On a degraded host a protection that rests on a missing layer must not fail silently: the
    test then verifies that ``Sandbox(require=[...])`` refuses with a clear message.
    """
    active, _notes = layers

    def check(*any_of: str) -> None:
        if any(active.get(name) for name in any_of):
            return
        with pytest.raises(SandboxUnavailable) as refused:
            Sandbox(require=[any_of[0]], prestart=False, **SANDBOX_PYTHON)
        assert any_of[0] in str(refused.value)
        pytest.skip(f"layers {any_of} inactive on this host; the sandbox refuses them: {refused.value}")

    return check
