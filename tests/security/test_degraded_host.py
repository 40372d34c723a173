"""A degraded host (no namespaces, no CAP_SYS_ADMIN, read-only cgroups): hold or refuse, never a silent hole.

The outer test reruns this whole suite under ``degraded_host.py``; inside, each hostile test
either passes on the layers that remain or verifies that the sandbox refuses the missing layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostside import status, worker_pid

from codeloop import Sandbox
from codeloop.errors import SandboxUnavailable

HERE = Path(__file__).parent
INSIDE = os.environ.get("CODELOOP_DEGRADED_HOST") == "1"


@pytest.mark.slow  # reruns the whole security suite: about a minute
@pytest.mark.skipif(INSIDE, reason="already on the degraded host")
@pytest.mark.skipif(os.geteuid() != 0, reason="simulating the degraded host needs root")
def test_the_suite_holds_or_refuses_on_a_degraded_host() -> None:
    command = [
        sys.executable, str(HERE / "degraded_host.py"), "--",
        sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(HERE),
        "-k", "not test_the_suite_holds_or_refuses_on_a_degraded_host",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=HERE.parent.parent)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert "passed" in proc.stdout and "failed" not in proc.stdout.splitlines()[-1], tail
    # the bombs that need a process limit were refused explicitly, not run against nothing
    assert "the sandbox refuses them" in proc.stdout, tail


@pytest.mark.skipif(not INSIDE, reason="runs only on the simulated degraded host")
def test_degraded_host_reports_missing_layers_and_refuses_them(
    layers: tuple[dict[str, bool], list[str]],
) -> None:
    active, notes = layers
    assert active["namespaces"] is False and active["cgroups"] is False
    assert active["landlock"] and active["seccomp"] and active["rlimits"] and active["no_network"]
    assert any(note.startswith("namespaces:") for note in notes)
    with pytest.raises(SandboxUnavailable, match="namespaces"):
        Sandbox(require=["namespaces"], prestart=False)


@pytest.mark.skipif(not INSIDE, reason="runs only on the simulated degraded host")
@pytest.mark.skipif(
    not Path("/usr/bin/python3").exists(), reason="needs an interpreter an ordinary uid can reach"
)
def test_degraded_host_still_switches_to_a_session_uid(token: str) -> None:
    """Without namespaces a root caller still drops the worker to its own uid, if the uid can reach
    the interpreter and the session: with the system python3 and a world-traversable root it can."""
    root = Path("/tmp") / f"codeloop-public-{token}"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    try:
        with Sandbox(python="/usr/bin/python3", root=root, prestart=False) as sb:
            assert sb.isolation["uid"] and sb.isolation["process_limit"] and not sb.isolation["namespaces"]
            r = sb.run(f"open('ok.txt', 'w').write('x')\nopen({str(root / 'escape.txt')!r}, 'w')")
            assert r.status == "error" and (sb.workdir / "ok.txt").exists()
            assert not (root / "escape.txt").exists()
            st = status(worker_pid(sb))
            assert int(st["Uid"].split()[0]) >= 1_700_000_000 and int(st["CapEff"], 16) == 0
            assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    finally:
        shutil.rmtree(root, ignore_errors=True)
