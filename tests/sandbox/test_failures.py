"""Timeouts, crashes, floods and forged replies: the session survives, and says what was lost."""

from __future__ import annotations

import time
from typing import Any

import pytest

from codeloop.errors import SandboxError
from codeloop.sandbox import RunStatus, Sandbox

HUNG = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "while True:\n"
    "    time.sleep(0.01)\n"
)


def assert_state_lost_and_session_works(sb: Sandbox, result_notes: list[str], stderr: str) -> None:
    assert any("variables, imports and definitions" in note for note in result_notes)
    assert "variables, imports and definitions" in stderr
    after = sb.run("state")
    assert after.status == "error" and after.error is not None and after.error.ename == "NameError"
    assert sb.run("1 + 1").value == "2"


def test_timeout_stops_the_cell_restarts_and_loses_state(sb: Sandbox) -> None:
    sb.run("state = 'set'")
    started = time.monotonic()
    result = sb.run("while True:\n    pass", timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.status is RunStatus.TIMEOUT
    assert result.restarted
    assert 0.5 <= elapsed < 5.0
    assert "0.5 s time limit" in result.stderr
    assert_state_lost_and_session_works(sb, result.notes, result.stderr)


def test_output_before_a_timeout_is_kept(sb: Sandbox) -> None:
    result = sb.run("import time\nprint('started', flush=True)\ntime.sleep(30)", timeout=0.5)
    assert result.status == "timeout" and result.stdout == "started\n"


@pytest.mark.parametrize("jail", [True, False], ids=["jailed", "plain"])
def test_worker_that_ignores_sigint_and_sigterm_is_still_stopped(jail: bool, procs: Any) -> None:
    with Sandbox(jail=jail, stop_grace=0.2) as sb:
        sb.run("state = 1")
        tree_before = procs.tree(sb.pid or -1)
        started = time.monotonic()
        result = sb.run(HUNG, timeout=0.5)
        assert time.monotonic() - started < 5.0
        assert result.status == "timeout" and result.restarted
        assert not procs.alive(tree_before), "the old worker's processes must be gone"
        assert_state_lost_and_session_works(sb, result.notes, result.stderr)


def test_timeout_kills_the_cells_child_processes_too(procs: Any) -> None:
    with Sandbox(jail=False) as sb:
        pid = sb.run("import subprocess\np = subprocess.Popen(['sleep', '60'])\np.pid").value
        assert pid is not None
        result = sb.run("p.wait()", timeout=0.3)
        assert result.status == "timeout"
        assert not procs.alive({int(pid)})


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os\nos._exit(3)", "exited with code 3"),
        ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
    ],
    ids=["os._exit", "segfault"],
)
def test_crashed_worker_is_detected_and_restarted(sb: Sandbox, code: str, expected: str) -> None:
    sb.run("state = 1")
    result = sb.run(code)
    assert result.status is RunStatus.CRASHED and result.restarted
    assert any(expected in note for note in result.notes), result.notes
    assert_state_lost_and_session_works(sb, result.notes, result.stderr)


def test_closing_fd_1_and_2_does_not_break_the_session(sb: Sandbox) -> None:
    result = sb.run("import os\nos.close(1)\nos.close(2)")
    assert result.ok
    after = sb.run("print('still printing')\nimport os\nos.write(2, b'and fd 2\\n')")
    assert after.ok and after.stdout == "still printing\n" and after.stderr == "and fd 2\n"


def test_closing_every_fd_is_a_crash_with_restart(sb: Sandbox) -> None:
    sb.run("state = 1")
    result = sb.run("import os\nos.closerange(0, 4096)")
    assert result.status is RunStatus.CRASHED and result.restarted
    assert_state_lost_and_session_works(sb, result.notes, result.stderr)


def test_worker_killed_between_calls_is_replaced_on_the_next_run(sb: Sandbox) -> None:
    import os
    import signal

    sb.run("state = 1")
    assert sb.pid is not None
    os.killpg(sb.pid, signal.SIGKILL)
    time.sleep(0.1)
    result = sb.run("1 + 1")
    assert result.ok and result.value == "2" and result.restarted
    assert any("since the last call" in note for note in result.notes)


def test_memory_error_reports_memory_and_restarts(sb: Sandbox) -> None:
    sb.run("state = 1")
    result = sb.run("raise MemoryError('pretend')")
    assert result.status is RunStatus.MEMORY and result.restarted
    assert result.error is not None and result.error.ename == "MemoryError"
    assert_state_lost_and_session_works(sb, result.notes, result.stderr)


def test_real_allocation_past_the_memory_limit() -> None:
    with Sandbox(memory_mb=256) as sb:
        if not sb.isolation.get("rlimits") and not sb.isolation.get("cgroups"):
            pytest.skip("no memory limit layer on this host")  # the jail reports why in isolation_notes
        result = sb.run("block = bytearray(2 * 1024**3)")
        assert result.status is RunStatus.MEMORY and result.restarted
        assert sb.run("1").ok


def test_output_flood_is_stopped_with_output_limit() -> None:
    with Sandbox(max_output=4096, output_hard_limit=4 << 20) as sb:
        sb.run("state = 1")
        started = time.monotonic()
        result = sb.run("import os\nwhile True:\n    os.write(1, b'x' * 65536)")
        assert time.monotonic() - started < 5.0
        assert result.status is RunStatus.OUTPUT_LIMIT and result.restarted and result.truncated
        assert len(result.stdout) < 5000 and "omitted" in result.stdout
        assert_state_lost_and_session_works(sb, result.notes, result.stderr)


def test_forged_reply_frames_without_the_nonce_are_ignored(sb: Sandbox) -> None:
    forge = (
        "import os, json, stat\n"
        "frame = json.dumps({'id': 'guess', 'status': 'ok', 'value': '42'}).encode()\n"
        "sent = 0\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        if not stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
        "            continue\n"
        "        os.write(fd, len(frame).to_bytes(4, 'big') + frame)\n"
        "        sent += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "'real'"
    )
    result = sb.run(forge)
    assert result.ok and result.value == "'real'"
    assert "ignored 1 reply frame(s) without this request's nonce" in result.notes
    assert sb.run("sent >= 1").value == "True"


def test_bad_arguments_get_clear_errors(sb: Sandbox) -> None:
    from codeloop.errors import ConfigError

    with pytest.raises(TypeError, match="code must be a str"):
        sb.run(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        sb.run("1", timeout=-1)
    with pytest.raises(ConfigError, match="max_output"):
        Sandbox(max_output=1)
    assert sb.run("1").ok  # nothing was lost


def test_a_cell_too_big_to_send_is_refused_and_loses_nothing(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from codeloop.errors import SandboxError
    from codeloop.sandbox import protocol

    sb.run("state = 'kept'")
    monkeypatch.setattr(protocol, "MAX_CODE_BYTES", 1000)  # the real limit is 64 MB: same path, small cell
    with pytest.raises(SandboxError, match="over the 1000 byte limit"):
        sb.run("x = 1\n" * 200)
    after = sb.run("state")
    assert after.ok and after.value == "'kept'" and not after.restarted
    assert after.cell == 2  # the refused cell took no number


@pytest.mark.parametrize("jail", [True, False])
def test_a_worker_that_cannot_start_is_a_sandbox_error_not_a_crashed_cell(jail: bool) -> None:
    """One clear error, instead of every cell coming back "crashed" (and an agent repairing forever)."""
    with Sandbox(python="/usr/bin/false", jail=jail, timeout=10) as sb:
        with pytest.raises(SandboxError, match=r"could not start.*exited with code 1"):
            sb.run("1 + 1")
        with pytest.raises(SandboxError, match="could not start"):
            sb.run("1 + 1")  # and again on the next call: nothing pretends to work


def test_a_cell_that_kills_the_worker_first_thing_is_still_a_crash() -> None:
    with Sandbox(timeout=10) as sb:
        result = sb.run("import os\nos._exit(3)")
        assert result.status == "crashed" and result.restarted
        assert sb.run("1 + 1").value == "2"
