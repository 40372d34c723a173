"""What the host does with what the sandbox gives it (#12 items 3, 5, 7, 8, 9, 11).

Forged reply frames, planted modules, terminal escapes, worker-controlled text parsed on the host,
an interpreter whose directory is a home, calls that reach the host's files and processes when
there are no namespaces. Verdicts: canaries on the host (file owner, mode, times; a decoy
process's limits in /proc), and what the host's own API returned.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hostside import DEGRADED, SANDBOX_PYTHON, status

from codeloop import Sandbox

Need = Callable[..., None]
Open = Callable[..., Sandbox]

# --- item 7: forged reply frames ------------------------------------------------------------------

#: cell code that finds the worker's reply pipe and the request's nonce in its own interpreter
FIND_REPLY = (
    "import json, os, sys\n"
    "f = sys._getframe()\n"
    "while f is not None and 'reply_fd' not in f.f_locals:\n"
    "    f = f.f_back\n"
    "fd, nonce = f.f_locals['reply_fd'], f.f_locals['nonce'].decode()\n"
    "def send(body):\n"
    "    os.write(fd, len(body).to_bytes(4, 'big') + body)\n"
)


@pytest.mark.parametrize(
    "body",
    [
        "b'{\"status\":\"ok\",\"id\":\"' + nonce.encode() + b'\",\"value\":' + b'[' * 3000 + b']' * 3000 + b'}'",
        "b'{\"status\":\"ok\",\"id\":\"' + nonce.encode() + b'\",\"value\":' + b'9' * 5000 + b'}'",
        "b'{\"status\":\"ok\",\"id\":\"' + nonce.encode() + b'\",\"files\":' + b'[' * 3000 + b']' * 3000 + b'}'",
    ],
    ids=["nesting-3000", "integer-5000-digits", "nested-files"],
)
def test_malformed_forged_frames_are_protocol_errors(open_sandbox: Open, body: str) -> None:
    sb = open_sandbox()
    r = sb.run(FIND_REPLY + f"send({body})\n")
    assert r.status == "crashed" and r.restarted, r
    assert any("protocol" in note for note in r.notes), r.notes
    assert sb.run("1 + 1").value == "2"


def test_the_host_reapplies_its_limits_to_a_forged_reply(open_sandbox: Open) -> None:
    sb = open_sandbox(max_repr=100, max_files=3, max_figures=2)
    png = "iVBORw0KGgo="
    r = sb.run(
        FIND_REPLY
        + "send(json.dumps({'status': 'ok', 'id': nonce, 'value': 'x' * 50000,"
        f" 'files': ['f%d' % i for i in range(1000)], 'figures': [{png!r}] * 100,"
        " 'notes': ['n'] * 10000}).encode())\n"
    )
    assert r.ok, r
    assert r.value is not None and len(r.value) < 200 and "truncated" in r.value
    assert len(r.files) == 3 and len(r.figures) == 2
    assert len(r.notes) < 100


def test_a_worker_claim_never_triggers_the_matplotlib_cache_build(
    open_sandbox: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codeloop.sandbox import mplcache

    calls: list[str] = []
    monkeypatch.setattr(mplcache, "request_build", lambda python: calls.append(python))
    sb = open_sandbox()
    r = sb.run(FIND_REPLY + "send(json.dumps({'status': 'ok', 'id': nonce, 'matplot' + 'lib': True}).encode())\n")
    assert r.ok and calls == []


# --- item 8: planted modules ----------------------------------------------------------------------

PLANT = (
    "for name in ('traceback', 'linecache', 'tokenize', 'binascii'):\n"
    "    open(name + '.py', 'w').write(\"import os\\nopen(os.environ['HOME'] + '/PLANTED-' + __name__, 'w')\\n\")\n"
)


def test_a_planted_module_never_runs_as_the_workers_own_code(open_sandbox: Open) -> None:
    """A fresh worker (after a restart) imports traceback/linecache on the first error: never
    from the session directory."""
    sb = open_sandbox()
    assert sb.run(PLANT).ok
    sb.restart()
    r = sb.run("1 / 0")
    assert r.status == "error" and r.error is not None and r.error.ename == "ZeroDivisionError"
    assert "Traceback (most recent call last)" in r.error.traceback and "1 / 0" in r.error.traceback
    assert sorted(p.name for p in sb.workdir.iterdir() if p.name.startswith("PLANTED")) == []


# --- item 9: terminal escapes ---------------------------------------------------------------------

HOSTILE_OUTPUT = "'\\x1b]52;c;Y2xpcGJvYXJk\\x07\\x1b]0;title\\x07\\x1b[2J\\x9b6n\\r\\x08done'"


def test_exec_escapes_control_characters_but_json_keeps_them() -> None:
    code = f"import sys\nprint({HOSTILE_OUTPUT})\nsys.stderr.write({HOSTILE_OUTPUT})\nraise ValueError({HOSTILE_OUTPUT})\n"
    plain = subprocess.run(
        [sys.executable, "-m", "codeloop", "exec", "-c", code], capture_output=True, text=True, timeout=120
    )
    if DEGRADED and not SANDBOX_PYTHON.get("python") == sys.executable:
        # the CLI's interpreter (under /root) is out of a session uid's reach: a clear refusal
        assert plain.returncode != 0 and "refusing to start" in plain.stderr, plain
        assert "Traceback" not in plain.stderr
        return
    for stream in (plain.stdout, plain.stderr):
        assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in stream), repr(stream)
    assert "\\x1b]52;c;Y2xpcGJvYXJk\\x07" in plain.stdout and "\\x1b]52" in plain.stderr
    raw = subprocess.run(
        [sys.executable, "-m", "codeloop", "exec", "--json", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(raw.stdout)["stdout"].startswith("\x1b]52;c;Y2xpcGJvYXJk\x07")


def test_the_console_escapes_sandbox_and_model_text() -> None:
    from codeloop.agent.events import CellOutput, ModelText
    from codeloop.cli.console import ConsolePrinter
    from codeloop.text.terminal import printable

    out = io.StringIO()
    printer = ConsolePrinter(out, color=False)
    printer(CellOutput("stdout", "a\x1b]52;c;eA==\x07b\n"))
    printer(ModelText("\x1b[2Jmodel\n"))
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]52" in text and "\\x1b[2J" in text
    assert printable("tab\tnew\nline\r\nend") == "tab\tnew\nline\nend"
    assert printable("\x00\x7f\x85\u2028é") == "\\x00\\x7f\\x85\u2028é"


def test_run_and_chat_print_the_isolation_warning_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from codeloop.cli.run_cmd import sandbox_factory
    from codeloop.sandbox.jail.launch import missing_layers_line

    if SANDBOX_PYTHON:  # the degraded host: its sessions need an interpreter a session uid can reach
        monkeypatch.setattr(sys, "executable", SANDBOX_PYTHON["python"])
    make = sandbox_factory(5.0)
    first, second = make(), make()
    try:
        assert first.isolation_warning == missing_layers_line(first.isolation)
        expected = first.isolation_warning
        err = capsys.readouterr().err
        if DEGRADED:
            assert expected is not None and "namespaces" in expected
        if expected is None:
            assert "layers off" not in err
        else:
            assert err.count(expected) == 1
    finally:
        first.close()
        second.close()


def test_isolation_warning_names_the_layers_that_are_off(open_sandbox: Open) -> None:
    sb = open_sandbox(network=True)
    assert sb.isolation_warning is not None and "no_network" in sb.isolation_warning
    assert sb.isolation_warning.startswith("codeloop: warning: sandbox layers off")


# --- item 11: worker-controlled text parsed on the host -------------------------------------------


@pytest.mark.parametrize("value", ["-" * 100_000 + "1", "(" * 100_000, "[" * 5000 + "]" * 5000])
def test_hostile_probe_values_do_not_crash_the_host(value: str) -> None:
    from codeloop.agent import hints
    from codeloop.engine import imports
    from codeloop.sandbox.tracing import TraceError, parse_trace

    assert hints.parse_names(value) == []
    assert imports.parse_statement(value) is None
    with pytest.raises(TraceError):
        parse_trace(value)


# --- item 5: an interpreter whose directory is a home ---------------------------------------------


@pytest.mark.parametrize("layout", ["bin/python", ".local/bin/python3"])
def test_an_interpreter_in_a_home_does_not_expose_the_home(
    open_sandbox: Open,
    need: Need,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    request: pytest.FixtureRequest,
) -> None:
    need("namespaces", "landlock")
    home = Path(tempfile.mkdtemp(prefix="codeloop-test-home-"))  # in /tmp: reachable by a session uid
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(token)
    (home / ".local" / "share").mkdir(parents=True)
    (home / ".local" / "share" / "secret").write_text(token)
    for path in (home, home / ".ssh", home / ".local", home / ".local" / "share"):
        path.chmod(0o755)  # readable by any uid: only the layers protect them
    for secret in (home / ".ssh" / "id_rsa", home / ".local" / "share" / "secret"):
        secret.chmod(0o644)
    python = home / layout
    python.parent.mkdir(parents=True, exist_ok=True)
    python.parent.chmod(0o755)
    python.symlink_to(os.path.realpath(SANDBOX_PYTHON.get("python", sys.executable)))
    monkeypatch.setenv("HOME", str(home))
    sb = open_sandbox(python=str(python))
    r = sb.run(
        "out = []\n"
        f"for p in ({str(home / '.ssh' / 'id_rsa')!r}, {str(home / '.local' / 'share' / 'secret')!r}):\n"
        "    try:\n        out.append(open(p).read())\n    except OSError as e:\n        out.append(type(e).__name__)\n"
        "print(out)"
    )
    assert r.ok, r
    assert token not in r.stdout and token not in repr(r)


# --- item 3: calls that reach the host without namespaces ------------------------------------------

_IPC_PRIVATE, _IPC_CREAT = 0, 0o1000


def _filtered_child(program: bytes, action: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run ``action`` in a forked child of this test under the seccomp ``program``; its report."""
    from codeloop.sandbox.jail import inworker

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            inworker.load_seccomp_bpf(program)
            os.write(w, json.dumps(action()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


def _errno_of(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as e:
        return e.errno or -1
    return 0


def test_the_host_view_filter_denies_chown_xattr_touch_sysv_and_other_pids(tmp_path: Path) -> None:
    from codeloop.sandbox.jail import seccomp_filter

    pytest.importorskip("pyseccomp")
    canary = tmp_path / "canary"
    canary.write_text("x")
    os.utime(canary, (1_000_000, 1_000_000))
    before = canary.stat()
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        limits_before = Path(f"/proc/{decoy.pid}/limits").read_text()
        nice_before = os.getpriority(os.PRIO_PROCESS, decoy.pid)

        def attempt() -> dict[str, object]:
            import resource

            libc = ctypes.CDLL(None, use_errno=True)

            def shm() -> None:
                if libc.shmget(_IPC_PRIVATE, 4096, _IPC_CREAT | 0o600) < 0:
                    raise OSError(ctypes.get_errno(), "shmget")

            return {
                "chown": _errno_of(lambda: os.chown(canary, 4242, 4242)),
                "setxattr": _errno_of(lambda: os.setxattr(canary, "user.codeloop", b"1")),
                "touch": _errno_of(lambda: os.utime(canary, None)),
                "shmget": _errno_of(shm),
                "prlimit": _errno_of(lambda: resource.prlimit(decoy.pid, resource.RLIMIT_NOFILE, (5, 5))),
                "setpriority": _errno_of(lambda: os.setpriority(os.PRIO_PROCESS, decoy.pid, 19)),
                "own prlimit": _errno_of(lambda: resource.prlimit(0, resource.RLIMIT_CORE, (0, 0))),
                "own write": _errno_of(lambda: (tmp_path / "own").write_text("fine")),
            }

        report = _filtered_child(seccomp_filter.compile_filter(False, False, host_view=True), attempt)
        for call in ("chown", "setxattr", "touch", "shmget", "prlimit", "setpriority"):
            assert report[call] == errno.EPERM, (call, report)
        assert report["own prlimit"] == 0 and report["own write"] == 0, report
        # host-side witnesses: the canary and the decoy are as they were
        after = canary.stat()
        assert (after.st_uid, after.st_mtime_ns) == (before.st_uid, before.st_mtime_ns)
        assert Path(f"/proc/{decoy.pid}/limits").read_text() == limits_before
        assert os.getpriority(os.PRIO_PROCESS, decoy.pid) == nice_before
        # with namespaces the filter still denies prlimit on any other process
        report = _filtered_child(
            seccomp_filter.compile_filter(False, False),
            lambda: {"prlimit": _errno_of(lambda: __import__("resource").prlimit(decoy.pid, 7, (5, 5)))},
        )
        assert report["prlimit"] == errno.EPERM
        assert Path(f"/proc/{decoy.pid}/limits").read_text() == limits_before
    finally:
        decoy.kill()
        decoy.wait()


def test_a_session_cannot_change_a_host_processs_limits(open_sandbox: Open) -> None:
    """Without a pid namespace (the degraded host) the decoy's pid is visible: prlimit on it fails."""
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.05)
        limits_before = Path(f"/proc/{decoy.pid}/limits").read_text()
        sb = open_sandbox()
        r = sb.run(
            "import resource\ntry:\n"
            f"    resource.prlimit({decoy.pid}, resource.RLIMIT_NOFILE, (5, 5))\n"
            "except OSError as e:\n    print(type(e).__name__)\n"
        )
        assert r.ok and r.stdout.strip() in ("PermissionError", "ProcessLookupError"), r
        assert Path(f"/proc/{decoy.pid}/limits").read_text() == limits_before
        assert status(decoy.pid)
    finally:
        decoy.kill()
        decoy.wait()
