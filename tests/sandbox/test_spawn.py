"""The launch seam and the spawner: fixed fds, clean env, closed stdin, and the preexec path."""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

import pytest

from codeloop.errors import SandboxError
from codeloop.sandbox import Sandbox
from codeloop.sandbox.exchange import Capture, Ending, exchange
from codeloop.sandbox.launcher import REPLY_FD, REQUEST_FD, WORKER_SCRIPT, LaunchSpec, build_launch
from codeloop.sandbox.protocol import encode_limits, encode_run_request
from codeloop.sandbox.spawn import spawn_worker


def plain_spec(session_dir: Path) -> LaunchSpec:
    return LaunchSpec(python=sys.executable, worker=WORKER_SCRIPT, session_dir=session_dir, jail=False)


def run_once(launch_dir: Path, code: str, preexec: object = None) -> dict[str, object]:
    launch = build_launch(plain_spec(launch_dir))
    if preexec is not None:
        launch = dataclasses.replace(launch, preexec_fn=preexec)
    proc = spawn_worker(launch)
    try:
        capture = Capture(4096, 1 << 20, None)
        nonce = "n1".ljust(16, "0")
        request = encode_run_request(nonce, code, 1, encode_limits(1000, 5, 50))
        outcome = exchange(proc, request, nonce, time.monotonic() + 20, capture)
        assert outcome.ending is Ending.REPLY and outcome.reply is not None, capture.text("stderr")
        return outcome.reply
    finally:
        proc.stop(0.1)
        proc.close()


def test_plain_launch_shape(tmp_path: Path) -> None:
    launch = build_launch(plain_spec(tmp_path))
    assert launch.argv[:3] == [sys.executable, "-I", "-B"] and launch.argv[-1] == str(tmp_path)
    assert launch.pass_fds == (REQUEST_FD, REPLY_FD) == (3, 4)
    assert launch.env["HOME"] == str(tmp_path) and launch.env["MPLBACKEND"] == "Agg"
    assert launch.isolation["process"] and not launch.isolation["namespaces"]
    assert any(note.startswith("namespaces") for note in launch.notes)


def test_children_of_a_cell_inherit_only_stdio_and_stdin_is_empty(sb: Sandbox) -> None:
    result = sb.run(
        "import subprocess, sys\n"
        "fds = subprocess.run(['ls', '/proc/self/fd'], capture_output=True, text=True).stdout.split()\n"
        "sorted(int(fd) for fd in fds), sys.stdin.read()"
    )
    assert result.ok, result.error
    assert result.value == "([0, 1, 2, 3], '')"  # 3 is ls reading its own fd directory


def test_the_preexec_path_runs_the_jail_hook_in_the_child(tmp_path: Path) -> None:
    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    reply = run_once(tmp_path, "import resource\nresource.getrlimit(resource.RLIMIT_NOFILE)", limit_files)
    assert reply["status"] == "ok" and reply["value"] == "(64, 64)"
    assert resource.getrlimit(resource.RLIMIT_NOFILE) != (64, 64)  # the host is untouched


def test_the_posix_spawn_path(tmp_path: Path) -> None:
    reply = run_once(tmp_path, "import os\nos.getcwd(), os.getpid() == os.getpgid(0)")
    assert reply["value"] == repr((str(tmp_path), True))


def test_a_missing_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    launch = dataclasses.replace(build_launch(plain_spec(tmp_path)), argv=["/nonexistent/python", "-I"])
    with pytest.raises(SandboxError, match="cannot start the sandbox worker"):
        spawn_worker(launch)
    assert len(os.listdir("/proc/self/fd")) < 64  # and no pipe was leaked (loosely: no fd storm)
