"""Processes: signals to the host, tracing the caller, and what is left after close.

The decoy is a process the test starts on the host; the caller is this pytest process. After
close, the host looks for every process the session had (and every one carrying the test's
token on its command line): none may be left, zombies included.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest
from hostside import alive, session_processes, status, wait_until, with_cmdline

from codeloop import Sandbox

Open = Callable[..., Sandbox]
Need = Callable[..., None]


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


SIGNALS = {
    "kill_by_pid": "import os, signal\nos.kill({pid}, signal.SIGKILL)",
    "kill_its_group": "import os, signal\nos.killpg({pid}, signal.SIGKILL)",
    "kill_everything": "import os, signal\nos.kill(-1, signal.SIGKILL)",
    "kill_with_a_shell": "import subprocess\nsubprocess.run(['kill', '-9', '{pid}'])",
    "pidfd_signal": "import os, signal\nfd = os.pidfd_open({pid})\nsignal.pidfd_send_signal(fd, signal.SIGKILL)",
}


@pytest.mark.parametrize("how", sorted(SIGNALS))
def test_host_decoy_survives(
    open_sandbox: Open, need: Need, decoy: subprocess.Popen[bytes], how: str
) -> None:
    need("namespaces", "uid", "landlock")
    sb = open_sandbox()
    sb.run(SIGNALS[how].format(pid=decoy.pid))
    assert decoy.poll() is None and alive(decoy.pid)


def test_the_caller_gets_no_signal(open_sandbox: Open, need: Need) -> None:
    need("namespaces", "uid", "landlock")
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: received.append(signum))
    try:
        sb = open_sandbox()
        sb.run(
            f"import os, signal\nos.kill({os.getpid()}, signal.SIGUSR2)\nos.kill(os.getppid(), signal.SIGUSR2)"
        )
        assert not wait_until(lambda: bool(received), timeout=0.3)
    finally:
        signal.signal(signal.SIGUSR2, previous)


TRACES = {
    "ptrace_attach": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint(libc.ptrace(16, {pid}, 0, 0))",
    "ptrace_seize": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint(libc.ptrace(0x4206, {pid}, 0, 0))",
    "gdb_style_mem_write": "open('/proc/{pid}/mem', 'wb').write(b'x')",
}


@pytest.mark.parametrize("how", sorted(TRACES))
def test_the_caller_cannot_be_traced(open_sandbox: Open, need: Need, how: str) -> None:
    need("seccomp", "landlock", "namespaces")
    sb = open_sandbox()
    sb.run(TRACES[how].format(pid=os.getpid()))
    assert status(os.getpid())["TracerPid"] == "0"


LEFTOVERS = {
    "daemon": (
        "import os\nif os.fork() == 0:\n    try:\n        os.setsid()\n    except OSError:\n        pass\n"
        "    if os.fork() == 0:\n        os.execvp('sh', ['sh', '-c', 'sleep 300; : {token}'])\n    os._exit(0)"
    ),
    "orphan": "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 300; : {token}'])",
    "new_session_child": (
        "import subprocess\ntry:\n    subprocess.Popen(['sh', '-c', 'sleep 300; : {token}'], start_new_session=True)\n"
        "except OSError:\n    pass"
    ),
    "zombies": "import os\nfor _ in range(5):\n    if os.fork() == 0:\n        os._exit(0)",
    "nohup_background": "import subprocess\nsubprocess.run(['sh', '-c', 'nohup sh -c \"sleep 300; : {token}\" >/dev/null 2>&1 &'])",
}


@pytest.mark.parametrize("how", sorted(LEFTOVERS))
def test_nothing_is_left_after_close(open_sandbox: Open, need: Need, token: str, how: str) -> None:
    need("namespaces", "uid", "cgroups", "seccomp")
    sb = open_sandbox()
    r = sb.run(LEFTOVERS[how].format(token=token) + "\nimport time\ntime.sleep(0.2)")
    assert r.status == "ok", r.error
    had = session_processes(sb)
    if how not in ("zombies", "new_session_child"):  # a bare host's seccomp may refuse setsid: nothing starts
        assert with_cmdline(token), "the test's process never started: the check below would prove nothing"
    sb.close()
    assert wait_until(lambda: not with_cmdline(token), timeout=1.0), with_cmdline(token)
    assert wait_until(lambda: not any(alive(pid) for pid in had), timeout=1.0), [p for p in had if alive(p)]
    # What may linger is dead: zombies handed to the host's init, which reaps them (no code, no memory).
    left = {pid: status(pid) for pid in had if status(pid)}
    assert all(s["State"].startswith("Z") and s["PPid"] == "1" for s in left.values()), left
