"""Streaming, threads, closing, the worker pool, fork and exit: nothing is left behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from codeloop.errors import SandboxError
from codeloop.sandbox import OutputChunk, RunResult, Sandbox
from codeloop.sandbox.pool import POOL

SLOW_PRINTER = "import time\nprint('first', flush=True)\ntime.sleep(0.8)\nprint('second')\n'done'"


def test_on_output_delivers_chunks_before_the_cell_ends(sb: Sandbox) -> None:
    seen: list[tuple[float, str, str]] = []
    result = sb.run(SLOW_PRINTER, on_output=lambda stream, text: seen.append((time.monotonic(), stream, text)))
    finished = time.monotonic()
    assert result.ok and result.stdout == "first\nsecond\n" and result.value == "'done'"
    assert [text for _, _, text in seen] == ["first\n", "second\n"]
    assert finished - seen[0][0] >= 0.5, "the first chunk must arrive while the cell still runs"


def test_stream_yields_chunks_then_the_result(sb: Sandbox) -> None:
    items = list(sb.stream("import sys\nprint('out')\nprint('err', file=sys.stderr)\n7"))
    assert isinstance(items[-1], RunResult) and items[-1].value == "7"
    chunks = items[:-1]
    assert all(isinstance(chunk, OutputChunk) for chunk in chunks)
    assert sorted(chunks) == [OutputChunk("stderr", "err\n"), OutputChunk("stdout", "out\n")]
    stream, text = chunks[0]  # a plain (stream, text) pair
    assert stream in ("stdout", "stderr") and text


def test_a_failing_callback_does_not_wedge_the_session(sb: Sandbox) -> None:
    def explode(stream: str, text: str) -> None:
        raise RuntimeError("callback broke")

    result = sb.run("print('a')\nprint('b')", on_output=explode)
    assert result.ok and result.stdout == "a\nb\n"
    assert any("callback broke" in note for note in result.notes)


def test_eight_sessions_in_parallel_threads_keep_their_own_state() -> None:
    errors: list[BaseException] = []
    values: dict[int, list[str | None]] = {}

    def work(n: int) -> None:
        try:
            with Sandbox() as sb:
                sb.run(f"n = {n}")
                values[n] = [sb.run("import time\ntime.sleep(0.05)\nn * 10").value for _ in range(3)]
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert values == {n: [str(n * 10)] * 3 for n in range(8)}


def test_one_session_shared_by_threads_serialises_calls(sb: Sandbox) -> None:
    sb.run("counter = 0")

    def bump() -> None:
        for _ in range(5):
            assert sb.run("counter += 1").ok

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sb.run("counter").value == "20"


def test_close_leaves_no_process_and_no_directory(procs: Any) -> None:
    sb = Sandbox()
    sb.run("import subprocess\nchild = subprocess.Popen(['sleep', '60'])")
    assert sb.pid is not None
    tree = procs.tree(sb.pid)
    assert len(tree) >= 2  # the worker (and its jail) and the sleeping child
    workdir = sb.workdir
    assert workdir.is_dir()
    sb.close()
    assert not procs.alive(tree)
    assert not workdir.exists()
    assert sb.closed and sb.pid is None
    sb.close()  # idempotent
    with pytest.raises(SandboxError, match="closed"):
        sb.run("1")


def test_context_manager_closes_even_on_error(procs: Any) -> None:
    with pytest.raises(KeyError), Sandbox() as sb:
        pid, workdir = sb.pid, sb.workdir
        raise KeyError("boom")
    assert pid is not None and not procs.alive(procs.tree(pid)) and not workdir.exists()


def test_close_from_another_thread_cuts_a_running_cell_short(procs: Any) -> None:
    sb = Sandbox()
    results: list[RunResult] = []
    runner = threading.Thread(target=lambda: results.append(sb.run("import time\ntime.sleep(30)")))
    runner.start()
    time.sleep(0.3)
    started = time.monotonic()
    sb.close()
    runner.join(10)
    assert time.monotonic() - started < 5
    assert results and results[0].status == "crashed"
    assert any("closed" in note for note in results[0].notes)


def test_pool_hands_out_a_ready_worker_and_refills() -> None:
    assert POOL.wait_for_refills(30)  # spares other tests are still starting
    with Sandbox():
        pass  # the first session of a profile fills the pool, in the background
    assert POOL.wait_for_refills(30)
    assert POOL.idle_count() >= 1
    pooled = set(POOL.idle_pids())
    with Sandbox() as sb:
        assert sb.pid in pooled, (sb.pid, pooled)  # taken from the pool, not started now
        assert sb.run("1 + 1").value == "2"
        assert POOL.wait_for_refills(30) and POOL.idle_count() >= 1  # and replaced


def _run_script(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_interpreter_exit_stops_pool_workers_and_unclosed_sessions(tmp_path: Path, procs: Any) -> None:
    done = _run_script(
        """
        from codeloop.sandbox import Sandbox
        from codeloop.sandbox.pool import POOL
        sb = Sandbox()                      # never closed
        sb.run("import subprocess\\nchild = subprocess.Popen(['sleep', '60'])")
        POOL.wait_for_refills(30)
        print(sb.pid, sb.workdir, *POOL.idle_pids())
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    pid, workdir, *pooled = done.stdout.split()
    assert pooled, "the pool should hold a spare worker"
    time.sleep(0.2)
    assert not procs.alive({int(pid), *map(int, pooled)})
    assert not Path(workdir).exists()


def test_forked_child_does_not_touch_the_parents_session(tmp_path: Path) -> None:
    done = _run_script(
        """
        import os, sys
        from codeloop.sandbox import Sandbox
        from codeloop.errors import SandboxError
        from codeloop.sandbox.pool import POOL
        sb = Sandbox()
        sb.run("x = 41")
        POOL.wait_for_refills(30)
        spares = POOL.idle_pids()
        pid = os.fork()
        if pid == 0:
            try:
                sb.run("1")
                code = 3                    # must have refused
            except SandboxError:
                code = 0
            sys.exit(code)                  # a normal exit runs atexit in the child
        _, status = os.waitpid(pid, 0)
        spares_alive = bool(spares) and all(os.path.exists(f"/proc/{p}") for p in spares)
        print(os.waitstatus_to_exitcode(status), sb.run("x + 1").value, sb.workdir.is_dir(), spares_alive)
        sb.close()
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "42", "True", "True"]


def test_a_session_outlives_the_thread_that_created_it() -> None:
    # A jail's parent-death signal follows the forking *thread*: workers must not die with it.
    made: list[Sandbox] = []
    creator = threading.Thread(target=lambda: made.append(Sandbox()))
    creator.start()
    creator.join(30)
    [sb] = made
    with sb:
        time.sleep(0.3)
        first = sb.run("1 + 1")
        assert first.value == "2" and not first.restarted, first.notes
        assert sb.run("import os\nos._exit(1)").restarted  # restarted from a thread that ends now:
        results: list[RunResult] = []
        finisher = threading.Thread(target=lambda: results.append(sb.run("x = 5")))
        finisher.start()
        finisher.join(30)
        time.sleep(0.3)
        after = sb.run("x")
        assert after.value == "5" and not after.restarted, after.notes
