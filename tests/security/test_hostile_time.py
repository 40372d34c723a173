"""Time: loops, sleepers deaf to signals, C-level sleeps, threads that never end, CPU limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hostside import alive, session_processes, wait_until, worker_pid

from codeloop import Sandbox

Open = Callable[..., Sandbox]

HANGS = {
    "busy_loop": "while True:\n    pass",
    "deaf_sleeper": (
        "import signal, time\nfor sig in range(1, signal.NSIG):\n    try:\n"
        "        signal.signal(sig, signal.SIG_IGN)\n    except (OSError, ValueError, RuntimeError):\n"
        "        pass\nwhile True:\n    time.sleep(1)"
    ),
    "c_sleep": "import ctypes\nctypes.CDLL(None).sleep(1000)",
    "blocked_read": "import os\nr, w = os.pipe()\nos.read(r, 1)",
    "sleeping_children": "import subprocess\nsubprocess.run(['sleep', '1000'])",
}


@pytest.mark.parametrize("kind", sorted(HANGS))
def test_hangs_end_at_the_deadline_and_leave_nothing(open_sandbox: Open, kind: str) -> None:
    sb = open_sandbox()
    sb.run("1")
    old = session_processes(sb)
    r = sb.run(HANGS[kind], timeout=0.5)
    assert r.status == "timeout"
    assert r.duration < 0.5 + 3.0, r.duration
    assert wait_until(lambda: not any(alive(p) for p in old)), [p for p in old if alive(p)]
    assert sb.run("3 * 3").value == "9"


def test_non_daemon_threads_do_not_outlive_the_session(open_sandbox: Open) -> None:
    sb = open_sandbox()
    r = sb.run(
        "import threading, time\n"
        "def forever():\n    while True:\n        time.sleep(0.05)\n"
        "for _ in range(3):\n    threading.Thread(target=forever).start()\nthreading.active_count()"
    )
    assert r.status == "ok" and r.value == "4"
    procs = session_processes(sb)
    sb.close()
    assert wait_until(lambda: not any(alive(p) for p in procs)), [p for p in procs if alive(p)]


def test_cpu_seconds_limit_holds_even_without_a_deadline(open_sandbox: Open) -> None:
    sb = open_sandbox(cpu_seconds=1, timeout=30)
    pid = worker_pid(sb)
    r = sb.run("while True:\n    pass")
    assert r.status == "crashed", (r.status, r.notes)
    assert r.duration < 10, r.duration
    assert not alive(pid)
    assert sb.run("'alive'").value == "'alive'"
