"""Resource bombs: processes, threads, memory, disk, descriptors, output. Verdicts from /proc."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

import pytest
from hostside import Sampler, rss_kb, session_processes, status, wait_until, worker_pid

from codeloop import Sandbox

Need = Callable[..., None]
Open = Callable[..., Sandbox]


def test_fork_bomb_stays_under_the_process_limit(open_sandbox: Open, need: Need) -> None:
    need("process_limit")
    sb = open_sandbox(limits={"processes": 24})
    sb.run("1")
    with Sampler(lambda: len(session_processes(sb))) as sampler:
        r = sb.run(
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
            timeout=2,
        )
    assert r.status == "timeout"
    assert 0 < sampler.peak <= 24 + 2, sampler.peak  # + bubblewrap's monitor and init
    assert sb.run("1 + 1").value == "2"


def test_thread_bomb_stays_under_the_process_limit(open_sandbox: Open, need: Need) -> None:
    need("process_limit")
    sb = open_sandbox(limits={"processes": 24})
    sb.run("1")
    pid = worker_pid(sb)
    with Sampler(lambda: int(status(pid).get("Threads", "0"))) as sampler:
        r = sb.run(
            "import threading, time\nthreads = []\n"
            "while True:\n    t = threading.Thread(target=time.sleep, args=(60,), daemon=True)\n"
            "    t.start()\n    threads.append(t)"
        )
    assert r.status == "error" and r.error is not None
    assert r.error.ename == "RuntimeError"  # "can't start new thread"
    assert sampler.peak <= 24, sampler.peak
    # the worker that ran out of threads was replaced: the next cell runs as in a fresh session
    assert r.restarted and any("exhausted" in note for note in r.notes), r.notes
    assert worker_pid(sb) != pid and not wait_until(lambda: status(pid).get("State", "Z")[:1] not in "ZX", 0.2)
    after = sb.run(THREAD_AND_RECURSION)
    assert after.ok and after.stdout == "thread ok\nrecursion ok\n", after


#: after an exhausted session, threads start again and deep recursion is a RecursionError
THREAD_AND_RECURSION = (
    "import threading\nt = threading.Thread(target=print, args=('thread ok',))\nt.start(); t.join()\n"
    "def down(n):\n    return down(n + 1)\n"
    "try:\n    down(0)\nexcept RecursionError:\n    print('recursion ok')\n"
)


def test_threads_left_running_restart_the_worker_before_the_next_cell(open_sandbox: Open, need: Need) -> None:
    """A cell that leaves the session at its thread limit without an error of its own (#12 item
    10): the next cell still starts fresh, with threads and a plain RecursionError."""
    need("process_limit")
    sb = open_sandbox(limits={"processes": 48})
    r = sb.run(
        "import threading\nev = threading.Event()\nn = 0\n"
        "try:\n    while True:\n        threading.Thread(target=ev.wait, daemon=True).start(); n += 1\n"
        "except RuntimeError:\n    pass\nn"
    )
    assert r.ok and int(r.value or 0) >= 8, r
    assert r.restarted and any("exhausted" in note for note in r.notes), r.notes
    after = sb.run(THREAD_AND_RECURSION)
    assert after.ok and after.stdout == "thread ok\nrecursion ok\n", after


MEMORY_BOMBS = {
    "one_big": "b = bytearray(8 * 1024**3)",
    "gradual": "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024**2))",
    "in_children": (
        "import os, time\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
        "        try:\n            b = bytearray(200 * 1024**2)\n            time.sleep(1)\n"
        "        finally:\n            os._exit(0)\n    kids.append(pid)\n"
        "for pid in kids:\n    os.waitpid(pid, 0)"
    ),
}


@pytest.mark.parametrize("kind", sorted(MEMORY_BOMBS))
def test_memory_bombs_stop_at_the_limit(open_sandbox: Open, need: Need, kind: str) -> None:
    if kind == "in_children":
        need("cgroups")  # per-process address space limits do not add up across processes
    sb = open_sandbox(memory_mb=256, limits={"tmp_size_mb": 16}, timeout=10)
    sb.run("1")
    with Sampler(lambda: rss_kb(session_processes(sb))) as sampler:
        r = sb.run(MEMORY_BOMBS[kind])
    assert sampler.peak <= (256 + 16 + 64) * 1024, f"session RSS peaked at {sampler.peak} kB"
    if kind != "in_children":
        assert r.status == "memory", (r.status, r.stderr[-500:])
    assert sb.run("2 + 2").value == "4"


def test_disk_bomb_is_cut_at_the_file_size_limit(open_sandbox: Open) -> None:
    sb = open_sandbox(limits={"file_size_mb": 4})
    r = sb.run("with open('big.bin', 'wb') as f:\n    for _ in range(64):\n        f.write(b'x' * 1024**2)")
    assert r.status == "error" and r.error is not None and r.error.ename == "OSError", r.error
    assert (sb.workdir / "big.bin").stat().st_size <= 4 * 1024**2


def test_filling_tmp_stays_private_and_small(open_sandbox: Open, token: str) -> None:
    sb = open_sandbox(limits={"tmp_size_mb": 8})
    r = sb.run(
        f"path = '/tmp/{token}'\n"
        "with open(path, 'wb') as f:\n    for _ in range(64):\n        f.write(b'x' * 1024**2)"
    )
    assert r.status == "error", r.status
    assert not Path("/tmp", token).exists()


def test_descriptor_exhaustion_stops_at_the_limit(open_sandbox: Open) -> None:
    sb = open_sandbox(limits={"open_files": 64})
    r = sb.run("files = []\nwhile True:\n    files.append(open('/dev/null'))")
    assert r.status == "error" and r.error is not None and r.error.ename == "OSError"
    assert len(os.listdir(f"/proc/{worker_pid(sb)}/fd")) <= 64
    assert sb.run("len(files) > 10").value == "True"


def test_a_gigabyte_of_output_is_capped(open_sandbox: Open) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sb = open_sandbox(max_output=1 << 16, timeout=20)
    r = sb.run("import sys\nchunk = 'y' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)")
    assert r.status == "output_limit", r.status
    assert len(r.stdout) <= (1 << 16) + 1024
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200 * 1024, f"the host grew by {grown_kb} kB reading the output"
    assert wait_until(lambda: sb.run("'ok'").value == "'ok'")
