"""A new isolation layer is one registered class: this test adds one without touching any module.

The layer below (a cap on queued signals, RLIMIT_SIGPENDING) is defined here alone: its probe,
its decision, its part of the in-worker plan and its in-worker step, a stdlib-only file written
here. Registering it is enough for the jail to decide it, ``sb.isolation`` to report it,
``require=`` to accept it, and a real worker to apply it before any user code.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hostside import SANDBOX_PYTHON

from codeloop import Sandbox
from codeloop.errors import SandboxError, SandboxUnavailable
from codeloop.sandbox import layers as registry
from codeloop.sandbox.jail import jailer

Open = Callable[..., Sandbox]
NAME = "test_sigpending"
LIMIT = 37
STEP = '''
import resource


def lower_sigpending(limit):
    resource.setrlimit(resource.RLIMIT_SIGPENDING, (limit, limit))
'''


@pytest.fixture
def step_file() -> Iterator[Path]:
    """The layer's in-worker step, where a session uid can read it (a private 0755 directory)."""
    where = Path(tempfile.mkdtemp(prefix="codeloop-test-layer-"))
    try:
        where.chmod(0o755)
        (where / "sigpending_step.py").write_text(STEP)
        (where / "sigpending_step.py").chmod(0o644)
        yield where / "sigpending_step.py"
    finally:
        shutil.rmtree(where)


@pytest.fixture
def released() -> list[str]:
    return []


@pytest.fixture
def registered(step_file: Path, released: list[str]) -> Iterator[registry.Layer]:
    class Sigpending(registry.Layer):
        name = NAME
        enforces = f"at most {LIMIT} queued signals"
        worker_file = step_file

        def probe(self) -> tuple[Any, str]:
            return hasattr(resource, "RLIMIT_SIGPENDING"), "no RLIMIT_SIGPENDING on this platform"

        def decide(self, jail: registry.JailState) -> bool:
            if not jail.host.found.get(self.name):
                return jail.off(self.name, jail.host.reasons.get(self.name, "not here"))
            jail.closers.append(lambda: released.append(self.name))  # what it would hold, freed at close
            return True

        def plan(self, jail: registry.JailState) -> registry.Plan:
            return {"lower_sigpending": {"limit": LIMIT}} if jail.on(self.name) else {}

    layer = Sigpending()
    registry.register(layer, after="landlock")
    try:
        yield layer
    finally:
        registry.unregister(NAME)
    assert NAME not in registry.names()


def test_a_registered_layer_is_decided_reported_and_applied(
    registered: registry.Layer, released: list[str], open_sandbox: Open
) -> None:
    assert registry.names().index(NAME) == registry.names().index("landlock") + 1
    with open_sandbox(require=[NAME], timeout=20.0) as sb:
        assert sb.isolation[NAME] is True
        assert list(sb.isolation) == list(registry.names())
        assert not any(note.startswith(NAME) for note in sb.isolation_notes)
        result = sb.run("import resource\nresource.getrlimit(resource.RLIMIT_SIGPENDING)")
        assert result.status == "ok", result
        assert result.value == f"({LIMIT}, {LIMIT})"
        # applied as a hard limit, after every other step: user code cannot raise it again
        raised = sb.run(f"import resource\nresource.setrlimit(resource.RLIMIT_SIGPENDING, ({LIMIT + 1}, {LIMIT + 1}))")
        assert raised.status == "error" and "ValueError" in str(raised.error), raised
    assert released == [NAME]


def test_a_host_without_it_reports_it_off_and_require_refuses(
    registered: registry.Layer, monkeypatch: pytest.MonkeyPatch, open_sandbox: Open
) -> None:
    lacking = registry.probe_host().without(NAME, "simulated: no queued-signal limit")
    monkeypatch.setattr(jailer, "probe_host", lambda: lacking)
    with pytest.raises(SandboxUnavailable, match=f"{NAME}: off: simulated"):
        Sandbox(prestart=False, require=[NAME], **SANDBOX_PYTHON)
    with open_sandbox(timeout=20.0) as sb:
        assert sb.isolation[NAME] is False
        assert f"{NAME}: off: simulated: no queued-signal limit" in sb.isolation_notes
        assert sb.run("import resource\nresource.getrlimit(resource.RLIMIT_SIGPENDING)").value != f"({LIMIT}, {LIMIT})"
    with Sandbox(jail=False, prestart=False) as plain:  # no jail: reported, and off
        assert plain.isolation[NAME] is False


def test_a_step_the_worker_cannot_find_stops_it_before_user_code(
    registered: registry.Layer, monkeypatch: pytest.MonkeyPatch, open_sandbox: Open
) -> None:
    monkeypatch.setattr(type(registered), "plan", lambda self, jail: {"no_such_step": {}})
    with open_sandbox(timeout=20.0) as sb:
        with pytest.raises(SandboxError, match=r"could not start(?s:.*)no in-worker step 'no_such_step'"):
            sb.run("print('user code ran')")
