"""Crashes the session must survive, and input/output that must not confuse the host.

Crash verdicts come from the host: the old worker process is gone and a new one answers.
Output verdicts: the host got well-formed text and its own reply channel was not forged.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable

import pytest
from hostside import alive, wait_until, worker_pid

from codeloop import Sandbox

Open = Callable[..., Sandbox]

CRASHES = {
    "null_read": "import ctypes\nctypes.string_at(0)",
    "c_recursion": "import sys\nsys.setrecursionlimit(10**7)\ndef f():\n    return list(map(lambda _: f(), [0]))\nf()",
    "os_exit": "import os\nos._exit(3)",
    "abort": "import os\nos.abort()",
    "kill_self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "stack_smash": "import ctypes\nctypes.memset(ctypes.addressof(ctypes.c_int.from_address(id(1))), 0, 1 << 20)",
}


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_the_session_recovers_from_a_crash(open_sandbox: Open, kind: str) -> None:
    sb = open_sandbox()
    sb.run("1")
    old = worker_pid(sb)
    r = sb.run(CRASHES[kind])
    # A SIGKILL from nowhere looks like the OOM killer unless a memory cgroup says otherwise.
    assert r.status in ("crashed", "error", *(("memory",) if kind == "kill_self" else ())), r.status
    if r.status in ("crashed", "memory"):
        assert r.restarted and wait_until(lambda: not alive(old))
    assert sb.run("6 * 7").value == "42"


def test_closed_stdout_and_stderr_come_back(open_sandbox: Open) -> None:
    sb = open_sandbox()
    first = sb.run("import os, sys\nos.close(1)\nos.close(2)\nprint('into the void')\nsys.stdout.flush()")
    assert first.status == "error" and first.error is not None and first.error.ename == "OSError"
    r = sb.run("print('after')")
    assert r.status == "ok" and r.stdout == "after\n", r  # nothing of the first cell leaks in
    assert "into the void" in first.stdout  # it belongs to the cell that printed it


LEAKS = {
    # a partial line waits in Python's buffer; the flush at the end of the cell fails on fd 1
    "partial_line": ("import os\nos.close(1)\nprint('partial', end='')", "partial"),
    "stderr_partial": ("import os, sys\nos.close(2)\nsys.stderr.write('err-part')", "err-part"),
    # a cell that points fd 1 at a pipe nobody reads (EPIPE) rather than closing it
    "broken_pipe": ("import os\nr, w = os.pipe()\nos.close(r)\nos.dup2(w, 1)\nprint('lost?', end='')", "lost?"),
}


@pytest.mark.parametrize("kind", sorted(LEAKS))
def test_output_printed_while_stdout_is_closed_never_leaks_into_the_next_cell(open_sandbox: Open, kind: str) -> None:
    code, text = LEAKS[kind]
    sb = open_sandbox()
    first = sb.run(code)
    after = sb.run("import sys\nprint('next')\nprint('next-err', file=sys.stderr)")
    assert after.ok and after.stdout == "next\n" and after.stderr == "next-err\n", (first, after)
    assert text in first.stdout + first.stderr or any("dropped" in note for note in first.notes), first


LATE_WRITERS = {  # each writes after its cell has replied, then leaves a marker file
    "thread": (
        "import sys, threading, time\n"
        "def later():\n    time.sleep(0.2)\n    print('late out')\n    print('late err', file=sys.stderr)\n"
        "    open('written', 'w').close()\n"
        "threading.Thread(target=later).start()"
    ),
    "child_process": (
        "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 0.2; echo late out; echo late err >&2; touch written'])"
    ),
}


@pytest.mark.parametrize("kind", sorted(LATE_WRITERS))
def test_output_written_between_cells_is_dropped_with_a_note(open_sandbox: Open, kind: str) -> None:
    sb = open_sandbox()
    first = sb.run(LATE_WRITERS[kind])
    assert first.ok and "late" not in first.stdout, first
    assert wait_until(lambda: (sb.workdir / "written").exists(), timeout=10)  # the late bytes are in the pipes
    after = sb.run("print('next')")
    assert after.ok and after.stdout == "next\n" and after.stderr == "", after  # nothing leaks in
    assert any("stdout written after the previous cell had finished" in note for note in after.notes), after
    assert any("stderr written after the previous cell had finished" in note for note in after.notes), after


def test_c_level_output_to_a_closed_stdout_is_dropped_with_a_note(open_sandbox: Open) -> None:
    sb = open_sandbox()
    first = sb.run("import ctypes, os\nlibc = ctypes.CDLL(None)\nos.close(1)\nlibc.printf(b'c-level')")
    assert first.ok, first.error
    assert "c-level" in first.stdout or any("C-level output" in note for note in first.notes), first
    after = sb.run("import ctypes\nctypes.CDLL(None).printf(b'fine')\nprint()")
    assert after.ok and "c-level" not in after.stdout and "fine" in after.stdout, after


INPUTS = {
    "syntax_error": ("def f(:\n    pass", "error"),
    "nul_bytes": ("x = 1\0\nx", "error"),
    "lone_surrogate": ("'\\ud800'", "ok"),
    "huge_source": ("x = 0\n" + "x += 1\n" * 20000 + "x", "ok"),
    "deep_nesting": ("(" * 5000 + ")" * 5000, "error"),
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_bad_input_gets_a_clean_result(open_sandbox: Open, kind: str) -> None:
    code, expected = INPUTS[kind]
    sb = open_sandbox()
    r = sb.run(code)
    assert r.status == expected, (r.status, r.error)
    assert not r.restarted
    assert sb.run("'still here'").value == "'still here'"


OUTPUTS = {
    "invalid_utf8": "import sys\nsys.stdout.buffer.write(b'a\\xff\\xfe\\xfdb\\n')\nsys.stdout.flush()",
    "binary": "import os\nos.write(1, bytes(range(256)))",
    "ansi_escapes": "print('\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31mred\\x1b[0m')",
    "split_utf8": "import os\nos.write(1, 'é'.encode()[:1])\nos.write(1, 'é'.encode()[1:])",
}


@pytest.mark.parametrize("kind", sorted(OUTPUTS))
def test_odd_output_arrives_as_text(open_sandbox: Open, kind: str) -> None:
    sb = open_sandbox()
    r = sb.run(OUTPUTS[kind])
    assert r.status == "ok", r.error
    assert isinstance(r.stdout, str)
    r.stdout.encode("utf-8")  # well-formed: no lone surrogates reach the caller
    if kind == "ansi_escapes":
        assert "\x1b[2J" in r.stdout  # data, kept as is; faces decide how to show it
    if kind == "split_utf8":
        assert r.stdout == "é"


def test_non_utf8_file_names_are_reported_safely_and_kept(open_sandbox: Open) -> None:
    sb = open_sandbox()
    r = sb.run(
        "import os\nopen(b'bad-\\xff-name.txt', 'wb').write(b'x')\n"
        "os.makedirs(b'dir-\\xfe')\nopen(b'dir-\\xfe/caf\\xc3\\xa9.txt', 'wb').write(b'y')\n"
        "open('back\\\\slash.txt', 'w').write('z')"
    )
    assert r.status == "ok", r.error
    assert b"bad-\xff-name.txt" in os.listdir(os.fsencode(sb.workdir))  # the real file is kept as named
    # bytes that are not UTF-8 are shown as \xNN; valid UTF-8 and backslashes stay as they are
    assert r.files == ["back\\slash.txt", "bad-\\xff-name.txt", "dir-\\xfe/café.txt"]
    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    print(*r.files, file=strict)  # printing on a strict UTF-8 stream must not raise
    json.dumps(r.to_dict(), ensure_ascii=False).encode("utf-8")
    again = sb.run("open(b'bad-\\xff-name.txt', 'ab').write(b'more')")
    assert again.files == ["bad-\\xff-name.txt"]  # the same name every time the file changes


def test_forged_replies_are_ignored(open_sandbox: Open) -> None:
    sb = open_sandbox()
    r = sb.run(
        "import json, os\nbody = json.dumps({'status': 'ok', 'value': \"'forged'\", 'id': 'x'}).encode()\n"
        "for fd in range(3, 64):\n    try:\n        os.write(fd, len(body).to_bytes(4, 'big') + body)\n"
        "    except OSError:\n        pass\n'real'"
    )
    assert r.value == "'real'", r
