"""codeloop sandbox worker: runs the cells of one session in one persistent namespace.

Stdlib only, and it never imports codeloop, so a jail needs just this file and the interpreter.
Started as ``python -I -B worker.py SESSION_DIR``. Requests arrive on fd 3 and replies leave on
fd 4, each a frame of a 4-byte big-endian length and UTF-8 JSON. User output goes to fds 1 and 2,
which the host reads as they fill; the protocol never shares them, so printed text cannot forge a
reply, and each reply carries the request's nonce so the host drops frames sent blind.

Per-cell work is kept tiny (no tracing, no imports on the happy path): parse, run, repr the last
expression, list changed files, and render figures only if the cell's session imported pyplot.
"""

from __future__ import annotations

import _ast
import io
import os
import signal
import sys
import time

# typing costs milliseconds of every worker start: imported for the type checker only
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_json: Any
try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None

MAX_FRAME = 64 << 20
REQUEST_FD = 3
REPLY_FD = 4

_SELF = sys.modules[__name__]  # keeps this module alive once a cell namespace replaces __main__
_MAIN_PID = os.getpid()
_in_cell = False
_keep: list[object] = []  # objects that must outlive replacement (the original stdio wrappers own fds 1 and 2)


# --- JSON without importing json (which pulls in re: ~5 ms of every fresh session) ---------------


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float


def _fail_default(obj):
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


if _json is not None:
    _scan = _json.make_scanner(_ScanContext())
    _encode = _json.make_encoder(None, _fail_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)

    def loads(text):
        obj, end = _scan(text, 0)
        if end != len(text):
            raise ValueError("trailing data after JSON value")
        return obj

    def dumps(obj):
        return "".join(_encode(obj, 0))

else:  # pragma: no cover
    import json

    def loads(text):
        return json.loads(text)

    def dumps(obj):
        return json.dumps(obj, separators=(",", ":"))


# --- framing ----------------------------------------------------------------------------------


class _Requests:
    """Buffered frame reader on the request pipe: usually one read() per request."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = os.read(self.fd, max(65536, n - len(self.buf)))
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next(self):
        if not self._fill(4):
            return None
        size = int.from_bytes(self.buf[:4], "big")
        if size > MAX_FRAME or not self._fill(4 + size):
            return None
        body = bytes(self.buf[4 : 4 + size])
        del self.buf[: 4 + size]
        return loads(body.decode("utf-8"))


def write_frame(fd, obj):
    body = dumps(obj).encode("ascii")
    view = memoryview(len(body).to_bytes(4, "big") + body)
    while view:
        view = view[os.write(fd, view) :]


# --- output streams ---------------------------------------------------------------------------


def _text_stream(fd):
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace", line_buffering=True)


class _Stdio:
    """Keeps fds 1/2 and sys.stdout/sys.stderr pointing at the host's pipes after every cell."""

    def __init__(self):
        self.out_fd = os.dup(1)  # close-on-exec copies: restore fds a cell closed or redirected
        self.err_fd = os.dup(2)
        _keep.extend([sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__])
        self.out = _text_stream(1)
        self.err = _text_stream(2)
        self.libc_fflush = None
        self.install()

    def install(self):
        if self.out.closed:
            self.out = _text_stream(1)
        if self.err.closed:
            self.err = _text_stream(2)
        sys.stdout = sys.__stdout__ = self.out  # type: ignore[misc]
        sys.stderr = sys.__stderr__ = self.err  # type: ignore[misc]

    def flush(self):
        for stream in (sys.stdout, sys.stderr, self.out, self.err):
            try:
                stream.flush()
            except Exception:
                pass
        if "ctypes" in sys.modules:  # C code that printf'd: flush libc's stdio buffers too
            try:
                if self.libc_fflush is None:
                    self.libc_fflush = sys.modules["ctypes"].CDLL(None).fflush
                self.libc_fflush(None)
            except Exception:
                pass

    def restore(self):
        """After a cell: flush, and undo closed or redirected fds 1/2 and replaced sys streams."""
        self.flush()
        try:
            os.dup2(self.out_fd, 1)
            os.dup2(self.err_fd, 2)
        except OSError:
            pass
        if sys.stdout is not self.out or sys.stderr is not self.err or self.out.closed or self.err.closed:
            self.install()


# --- one cell ---------------------------------------------------------------------------------


def _on_sigint(signum, frame):
    # Interrupts only user code; a SIGINT during protocol I/O would tear a frame.
    if _in_cell:
        raise KeyboardInterrupt


def register_source(name, code):
    """Make tracebacks and inspect show the cell's lines, as for a file on disk."""
    linecache = sys.modules.get("linecache")
    if linecache is not None:
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    _sources[name] = code


_sources: dict[str, str] = {}


def _sync_linecache():
    import linecache

    for name, code in _sources.items():
        if name not in linecache.cache:
            linecache.cache[name] = (len(code), None, code.splitlines(True), name)


def describe_error(exc):
    """ename, evalue and a traceback that starts at the user's code (worker frames dropped)."""
    _sync_linecache()
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _WORKER_FILE:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception as e:  # a broken __str__ or similar
        text = f"{type(exc).__name__}: <traceback unavailable: {type(e).__name__}>\n"
    try:
        evalue = str(exc)
    except Exception:
        evalue = "<str() failed>"
    return {"ename": type(exc).__name__, "evalue": evalue, "traceback": text}


def bounded_repr(value, limit):
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + f"... [codeloop: repr truncated, {len(text) - limit} more characters]"
    return text


#: Library caches under HOME (the session dir): fontconfig, matplotlib, pip. Not the user's files.
HOME_CACHES = frozenset({".cache", ".config", ".local"})


def snapshot(root, limit):
    """Path -> (mtime_ns, size) of files under root, symlinks not followed, at most limit entries.

    Also returns whether the limit cut the scan short and whether root holds anything scanned."""
    seen: dict[str, tuple[int, int]] = {}
    stack = [(root, "")]
    scanned = 0
    while stack:
        path, prefix = stack.pop()
        try:
            entries = os.scandir(path)
        except OSError:
            continue
        with entries:
            for entry in entries:
                scanned += 1
                if scanned > limit:
                    return seen, True, True
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not prefix and entry.name in HOME_CACHES:
                            scanned -= 1
                            continue
                        stack.append((entry.path, prefix + entry.name + "/"))
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                seen[prefix + entry.name] = (st.st_mtime_ns, st.st_size)
    return seen, False, scanned > 0


class _Files:
    """Files created or changed in the session dir since the previous cell ended (one scan a cell).

    While the directory is empty, a stat of it stands in for the scan: nothing can appear in the
    tree without an entry appearing in the root, which moves the root's mtime. An mtime within
    the last 50 ms is not trusted (timestamps are coarse), so a quick change is never missed.
    """

    def __init__(self, root):
        self.root = root
        self.last: dict[str, tuple[int, int]] = {}
        self.empty_since = None  # root mtime_ns when seen empty and settled
        self.rescan(5000)

    def rescan(self, limit):
        try:
            before = os.stat(self.root).st_mtime_ns
        except OSError:
            before = None
        self.last, truncated, occupied = snapshot(self.root, limit)
        settled = before is not None and time.time_ns() - before > 50_000_000
        self.empty_since = before if not occupied and settled else None
        return truncated

    def changed(self, limit, max_files, notes):
        if self.empty_since is not None:
            try:
                if os.stat(self.root).st_mtime_ns == self.empty_since:
                    return []
            except OSError:
                pass
        previous = self.last
        if self.rescan(limit):
            notes.append(f"the session directory has more than {limit} entries; changes past them are not listed")
        changed = sorted(path for path, stamp in self.last.items() if previous.get(path) != stamp)
        if len(changed) > max_files:
            notes.append(f"{len(changed) - max_files} more changed files not listed (limit {max_files})")
            changed = changed[:max_files]
        return changed


def collect_figures(limit, notes):
    """PNG (base64) of each open matplotlib figure, then close them all; free if pyplot is unused."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    import binascii

    figures = []
    try:
        numbers = plt.get_fignums()
        for number in numbers[:limit]:
            buf = io.BytesIO()
            plt.figure(number).savefig(buf, format="png")
            figures.append(binascii.b2a_base64(buf.getvalue(), newline=False).decode("ascii"))
        if len(numbers) > limit:
            notes.append(f"{len(numbers) - limit} more figures were open and not rendered (limit {limit})")
    except Exception as e:
        notes.append(f"rendering figures failed: {type(e).__name__}: {e}")
    finally:
        try:
            plt.close("all")
        except Exception:
            pass
    return figures


def run_cell(request, namespace, files, stdio):
    """Run one cell; the reply holds only what is not empty (small frames are fast frames)."""
    global _in_cell
    code = request["code"]
    name = f"<cell {request['cell']}>"
    register_source(name, code)
    reply: dict[str, object] = {"status": "ok"}
    notes: list[str] = []
    try:
        _in_cell = True
        try:
            tree: Any = compile(code, name, "exec", _ast.PyCF_ONLY_AST)
            last = None
            if tree.body and isinstance(tree.body[-1], _ast.Expr):
                last = _ast.Expression(tree.body.pop().value)
            if tree.body:
                exec(compile(tree, name, "exec"), namespace)
            if last is not None:
                result = eval(compile(last, name, "eval"), namespace)
                if result is not None:
                    namespace["_"] = result
                    reply["value"] = bounded_repr(result, request.get("max_repr", 20000))
        finally:
            _in_cell = False
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: a cell never ends the worker
        reply["status"] = "memory" if isinstance(exc, MemoryError) else "error"
        reply["error"] = describe_error(exc)
    if os.getpid() != _MAIN_PID:  # a cell's os.fork() child fell through: it must not reply
        os._exit(0)
    stdio.restore()
    figures = collect_figures(request.get("max_figures", 20), notes)
    if figures:
        reply["figures"] = figures
    changed = files.changed(request.get("scan_limit", 5000), request.get("max_files", 200), notes)
    if changed:
        reply["files"] = changed
    if notes:
        reply["notes"] = notes
    return reply


def _apply_jail():
    """jail: apply the layers the host planned in CODELOOP_JAIL (rlimits, uid, seccomp, Landlock).

    Runs first, before any user code and before stray fds are closed (a seccomp program may
    arrive on one). The code lives in jail/inworker.py, loaded by path; any failure is fatal.
    """
    if "CODELOOP_JAIL" not in os.environ:
        return
    path = os.path.join(os.path.dirname(_WORKER_FILE), "jail", "inworker.py")
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    namespace: dict = {"__name__": "codeloop_jail_inworker"}
    exec(code, namespace)
    namespace["apply_from_env"]()


def main():
    _apply_jail()
    session_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())
    try:
        os.closerange(REPLY_FD + 1, min(os.sysconf("SC_OPEN_MAX"), 1 << 16))
    except (OSError, ValueError):
        pass
    # Move the protocol pipes off 3/4 as close-on-exec copies: user code and its children
    # never inherit them, and a blind write to fd 4 hits nothing.
    requests = _Requests(os.dup(REQUEST_FD))
    os.close(REQUEST_FD)
    reply_fd = os.dup(REPLY_FD)
    os.close(REPLY_FD)
    stdio = _Stdio()
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.makedirs(session_dir, exist_ok=True)
    os.chdir(session_dir)
    sys.path.insert(0, session_dir)
    sys.argv = [""]
    module = type(sys)("__main__")
    namespace = module.__dict__
    namespace["__builtins__"] = sys.modules["builtins"]
    sys.modules["__main__"] = module  # pickle finds classes and functions defined in cells
    files = _Files(session_dir)

    while True:
        request = requests.next()
        if request is None:  # the host closed the pipe: stop without waiting for user threads
            stdio.flush()
            os._exit(0)
        try:
            if request.get("op") == "run":
                reply = run_cell(request, namespace, files, stdio)
            else:
                reply = {"status": "error", "error": {"ename": "ProtocolError", "evalue": "unknown op", "traceback": ""}}
        except BaseException as exc:  # e.g. a SIGINT landing while an error was being described
            if os.getpid() != _MAIN_PID:
                os._exit(0)
            reply = {"status": "error", "error": {"ename": type(exc).__name__, "evalue": str(exc), "traceback": ""}}
        reply["id"] = request.get("id")
        write_frame(reply_fd, reply)


_WORKER_FILE = main.__code__.co_filename

if __name__ == "__main__":
    main()
