"""codeloop sandbox worker: runs the cells of one session in one persistent namespace.

Stdlib only, and it never imports codeloop, so a jail needs just this file and the interpreter.
Started as ``python -I -B worker.py SESSION_DIR``. Requests arrive on fd 3 and replies leave on
fd 4, each a frame of a 4-byte big-endian length and a body: a request body is a fixed binary
header and the cell's UTF-8 source (see ``protocol.encode_run_request``; the host is trusted), a
reply body is UTF-8 JSON (the host checks it). User output goes to fds 1 and 2, which the host
reads as they fill; the protocol never shares them, so printed text cannot forge a reply, and each
reply carries the request's nonce so the host drops frames sent blind.

Per-cell work is kept tiny (no tracing, no imports on the happy path): one parse to an AST, run,
repr the last expression, list changed files, and render figures only if the session imported
pyplot. A reply that has nothing to say but "ok" is written without the JSON encoder.
"""

from __future__ import annotations
import __future__

import _ast
import _json
import _struct
import _thread
import errno
import io
import os
import signal
import stat
import sys
import time

# typing costs milliseconds of every worker start: imported for the type checker only
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FRAME = 64 << 20
REQUEST_FD = 3
REPLY_FD = 4
SCAN_LIMIT = 5000  # entries of the session directory looked at per cell

#: A run request's body: op b"r", the 16-character nonce, the cell number, max_repr, max_figures,
#: max_files, then the cell's source (UTF-8, lone surrogates passed through). See protocol.py.
_HEADER = _struct.Struct(">c16sQIII")

_S_ISDIR = stat.S_ISDIR

_SELF = sys.modules[__name__]  # keeps this module alive once a cell namespace replaces __main__
_MAIN_PID = os.getpid()
_in_cell = False
_told_matplotlib = False  # whether the host has heard that this session uses matplotlib
_future_flags = 0  # compiler flags of the __future__ imports cells have made so far
_FUTURE_MASK = 0
for _feature in __future__.all_feature_names:
    _FUTURE_MASK |= getattr(__future__, _feature).compiler_flag
_keep: list[object] = []  # objects that must outlive replacement (the original stdio wrappers own fds 1 and 2)


# --- JSON without importing json (which pulls in re: ~5 ms of every fresh session) ---------------


def _fail_default(obj):
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


_encode = _json.make_encoder(None, _fail_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)


def dumps(obj):
    """Compact ASCII JSON (any str survives the pipe, lone surrogates as \\u escapes)."""
    return "".join(_encode(obj, 0))


# --- framing ----------------------------------------------------------------------------------


class _Requests:
    """Frame reader on the request pipe: one read() per request unless the cell is big."""

    def __init__(self, fd):
        self.fd = fd
        self.rest = b""  # bytes read past the last frame (the host sends one request at a time)

    def next(self):
        """The next frame as bytes (its body starts at offset 4), or None at EOF or when too big."""
        buf = self.rest
        while len(buf) < 4:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            buf += chunk
        end = 4 + int.from_bytes(buf[:4], "big")
        if end - 4 > MAX_FRAME:
            return None
        if len(buf) < end:
            parts, have = [buf], len(buf)
            while have < end:
                chunk = os.read(self.fd, max(65536, end - have))
                if not chunk:
                    return None
                parts.append(chunk)
                have += len(chunk)
            buf = b"".join(parts)
        if len(buf) == end:
            self.rest = b""
            return buf
        self.rest = buf[end:]
        return buf[:end]


def write_frame(fd, body):
    data = len(body).to_bytes(4, "big") + body
    sent = os.write(fd, data)
    if sent < len(data):  # a big reply: the host reads while we write
        view = memoryview(data)[sent:]
        while view:
            view = view[os.write(fd, view) :]


#: the id of the frame a worker sends once, when it is ready for requests
READY_ID = b"ready"
_OK_BODY = b'{"status":"ok","id":"%s"}'
_OK_HEAD = (len(_OK_BODY) - 2 + 16).to_bytes(4, "big") + _OK_BODY[:-4]  # for a 16-byte nonce


def send_reply(fd, reply, nonce):
    """Write the reply with the request's nonce; a bare "ok" skips the JSON encoder."""
    if len(reply) == 1 and reply["status"] == "ok" and len(nonce) == 16:
        os.write(fd, _OK_HEAD + nonce + b'"}')  # 43 bytes: one write, atomic on a pipe
        return
    reply["id"] = nonce.decode("ascii", "replace")
    write_frame(fd, dumps(reply).encode("ascii"))


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
        self.libc_lost = False
        self.install()

    def install(self):
        if self.out.closed:
            self.out = _text_stream(1)
        if self.err.closed:
            self.err = _text_stream(2)
        sys.stdout = sys.__stdout__ = self.out  # type: ignore[misc]
        sys.stderr = sys.__stderr__ = self.err  # type: ignore[misc]

    def flush(self):
        """Flush Python's and libc's stdio buffers; return the streams a write error left full.

        A Python stream whose write failed (its fd was closed, say) keeps the bytes and writes
        them at its next successful flush; libc drops them and reports EOF (noted in libc_lost).
        """
        out, err = sys.stdout, sys.stderr
        streams = (self.out, self.err) if out is self.out and err is self.err else (out, err, self.out, self.err)
        stuck = []
        for stream in streams:
            try:
                stream.flush()
            except OSError:
                stuck.append(stream)
            except Exception:  # a closed stream holds nothing; a user's odd object is its own business
                pass
        if self.libc_fflush is not None or "ctypes" in sys.modules:  # C code that printf'd: flush libc's buffers too
            try:
                if self.libc_fflush is None:
                    self.libc_fflush = sys.modules["ctypes"].CDLL(None).fflush
                if self.libc_fflush(None) != 0:
                    self.libc_lost = True
            except Exception:
                pass
        return stuck

    def end_cell(self, notes):
        """After a cell, before its reply: flush what it printed, so the host has it first.

        Output the cell printed while fd 1 or 2 was closed or broken is sent once they point at
        the host again, so it belongs to this cell; what still cannot be written is dropped with
        a note. It must never wait in a buffer and come out in the next cell.
        """
        self.libc_lost = False
        stuck = self.flush()
        if stuck:
            self.repair()
            self.deliver_or_drop(stuck, notes)
        if self.libc_lost:
            notes.append("C-level output (printf) that could not be written was lost: was stdout or stderr closed?")

    def repair(self):
        """Undo closed or redirected fds 1/2 and replaced sys streams before the next cell.

        Called after the reply is written (off the round trip's critical path): the next cell
        cannot start before the worker reads its request, which comes after this."""
        try:
            os.dup2(self.out_fd, 1)
            os.dup2(self.err_fd, 2)
        except OSError:
            pass
        if sys.stdout is not self.out or sys.stderr is not self.err or self.out.closed or self.err.closed:
            self.install()

    def deliver_or_drop(self, streams, notes):
        """Flush streams whose bytes a failed write left behind, now that fds 1/2 are restored;
        one of ours that still fails is retired (kept alive, never flushed) and replaced."""
        dropped = False
        for stream in streams:
            try:
                stream.flush()
            except Exception:
                if stream is self.out:
                    self.out = _text_stream(1)
                elif stream is self.err:
                    self.err = _text_stream(2)
                else:
                    continue  # a stream of the user's that does not write to fds 1/2
                _keep.append(stream)  # no finalizer may flush it into a later cell
                dropped = True
        if dropped:
            notes.append("output that could not be written (was stdout or stderr closed?) was dropped")
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


class _SafeImports:
    """While the worker imports for itself (traceback, linecache, binascii), ``sys.path`` is the
    interpreter's own, as it was before the session directory went on it: a module the session
    planted there (``traceback.py``) never runs as the worker's own code, e.g. on the first error
    after a restart, and a cell that broke ``sys.path`` still gets its traceback."""

    def __enter__(self):
        self.saved = sys.path
        sys.path = list(_BASE_PATH)  # the interpreter's own path, as it was before any cell ran

    def __exit__(self, *exc):
        sys.path = self.saved
        return False


_SESSION_DIR = [""]
_BASE_PATH: list[str] = []


def _sync_linecache():
    with _SafeImports():
        import linecache

    for name, code in _sources.items():
        if name not in linecache.cache:
            linecache.cache[name] = (len(code), None, code.splitlines(True), name)


def describe_error(exc):
    """ename, evalue and a traceback that starts at the user's code (worker frames dropped)."""
    _sync_linecache()
    with _SafeImports():
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


def display_path(path):
    """A relative path as safe, printable text: bytes that are not UTF-8 become ``\\xNN``.

    os.scandir decodes such bytes to lone surrogates (surrogateescape), which crash anything that
    encodes the name as UTF-8 (printing, JSON, a terminal). The host applies the same rule.
    """
    if path.isascii():
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _Files:
    """Files created or changed in the session dir since the previous cell ended (one scan a cell).

    Every cell stats each directory and each file of the tree (one lstat apiece), but lists a
    directory again only when it changed: its entries change only together with its mtime (and
    ctime; the inode number catches a replaced directory). A listing is trusted only if that
    mtime was over 50 ms old when it was taken, because timestamps are coarse and a change in
    the same tick would otherwise go unseen. A file's contents can change without its directory
    noticing, hence the stat of every file. A session directory that holds nothing (library
    caches aside) costs one stat of it.
    """

    def __init__(self, root):
        self.root = root
        self.last: dict[str, tuple[int, int]] = {}
        self.listings: dict[str, tuple[tuple[int, int, int], list[tuple[str, bool]]]] = {}
        self.empty_key = None  # the root's (ino, mtime, ctime) when its trusted listing was empty
        self.rescan(SCAN_LIMIT)

    def rescan(self, limit):
        """Take a new snapshot; True when the limit cut it short."""
        seen: dict[str, tuple[int, int]] = {}
        listings = {}
        old_listings = self.listings
        stack = [(self.root, "")]
        scanned = 0
        now = time.time_ns()
        truncated = False
        while stack and not truncated:
            path, prefix = stack.pop()
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            if not _S_ISDIR(st.st_mode):
                continue
            key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            cached = old_listings.get(prefix)
            if cached is not None and cached[0] == key:
                entries = cached[1]
            else:
                try:
                    with os.scandir(path) as found:
                        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in found]
                except OSError:
                    continue
            if now - max(st.st_mtime_ns, st.st_ctime_ns) > 50_000_000:
                listings[prefix] = (key, entries)
            for name, is_dir in entries:
                if is_dir and not prefix and name in HOME_CACHES:
                    continue
                scanned += 1  # directories count too: the limit bounds the work, not just the list
                if scanned > limit:
                    truncated = True
                    break
                if is_dir:
                    stack.append((f"{path}/{name}", f"{prefix}{name}/"))
                    continue
                try:
                    fst = os.stat(f"{path}/{name}", follow_symlinks=False)
                except OSError:
                    continue
                seen[prefix + name] = (fst.st_mtime_ns, fst.st_size)
        self.last = seen
        self.listings = listings
        root = listings.get("")
        empty = root is not None and all(is_dir and name in HOME_CACHES for name, is_dir in root[1])
        self.empty_key = root[0] if empty and root is not None else None
        return truncated

    def changed(self, limit, max_files, notes):
        if self.empty_key is not None:
            try:
                st = os.stat(self.root, follow_symlinks=False)
                if (st.st_ino, st.st_mtime_ns, st.st_ctime_ns) == self.empty_key:
                    return []
            except OSError:
                pass
        previous = self.last
        if self.rescan(limit):
            notes.append(f"the session directory has more than {limit} entries; changes past them are not listed")
        changed = sorted(display_path(path) for path, stamp in self.last.items() if previous.get(path) != stamp)
        if len(changed) > max_files:
            notes.append(f"{len(changed) - max_files} more changed files not listed (limit {max_files})")
            changed = changed[:max_files]
        return changed


def collect_figures(limit, notes):
    """PNG (base64) of each open matplotlib figure, then close them all; free if pyplot is unused."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    with _SafeImports():
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


#: threads a cell may leave running before the worker asks for a restart (half of a lower RLIMIT_NPROC)
MAX_LEFT_THREADS = 100


def _thread_ceiling():
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    except Exception:
        return MAX_LEFT_THREADS
    return MAX_LEFT_THREADS if soft < 0 or soft // 2 >= MAX_LEFT_THREADS else max(soft // 2, 8)


def exhaustion(exc):
    """Why the session ran out of threads, processes or memory in this cell, or None.

    After that the interpreter is not as a fresh one would be (new threads cannot start, a
    recursion error comes back as SystemError): the host restarts the worker before the next cell.
    """
    left = _thread._count()
    if left > _THREAD_CEILING[0]:
        return f"{left} threads left running"
    if left:  # threads left running (rare): can a new one still start? (memory or a limit may be spent)
        try:
            _thread.start_new_thread(_noop, ())
        except RuntimeError:
            return f"no new thread can start ({left} left running)"
    seen = 0
    while exc is not None and seen < 20:
        seen += 1
        if isinstance(exc, MemoryError):
            return "out of memory"
        if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
            return "no new thread could start"
        if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.ENOMEM) and "fork" in str(exc).lower():
            return "no new process could start"
        if isinstance(exc, BlockingIOError) and exc.errno == errno.EAGAIN:
            return "no new process could start (resource temporarily unavailable)"
        exc = exc.__cause__ or exc.__context__
    return None


_THREAD_CEILING = [MAX_LEFT_THREADS]


def _noop():
    pass


def run_cell(code, cell, limits, namespace, files, stdio):
    """Run one cell; the reply holds only what is not empty (small frames are fast frames).

    The source is parsed once, to an AST: the module body and the last expression statement (if
    any) are compiled from it, so the value of a trailing expression comes back like a notebook's.
    """
    global _in_cell, _future_flags, _told_matplotlib
    max_repr, max_figures, max_files = limits
    name = f"<cell {cell}>"
    register_source(name, code)
    reply: dict[str, object] = {"status": "ok"}
    notes: list[str] = []
    failure = None
    try:
        _in_cell = True
        try:
            # dont_inherit: a cell gets the __future__ imports of earlier cells (as in a REPL),
            # never those of this file
            flags = _future_flags
            tree: Any = compile(code, name, "exec", _ast.PyCF_ONLY_AST | flags, True)
            body = tree.body
            last = _ast.Expression(body.pop().value) if body and body[-1].__class__ is _ast.Expr else None
            if body or last is None:
                module = compile(tree, name, "exec", flags, True)
                flags = _future_flags = flags | (module.co_flags & _FUTURE_MASK)
                exec(module, namespace)
            if last is not None:
                result = eval(compile(last, name, "eval", flags, True), namespace)
                if result is not None:
                    namespace["_"] = result
                    reply["value"] = bounded_repr(result, max_repr)
        finally:
            _in_cell = False
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: a cell never ends the worker
        failure = exc
        reply["status"] = "memory" if isinstance(exc, MemoryError) else "error"
        reply["error"] = describe_error(exc)
    if os.getpid() != _MAIN_PID:  # a cell's os.fork() child fell through: it must not reply
        os._exit(0)
    exhausted = exhaustion(failure)
    failure = None
    if exhausted is not None:
        reply["exhausted"] = exhausted
    if "matplotlib.pyplot" in sys.modules:
        figures = collect_figures(max_figures, notes)
        if figures:
            reply["figures"] = figures
    stdio.end_cell(notes)  # after the figures: what rendering printed is this cell's output too
    if not _told_matplotlib and "matplotlib.font_manager" in sys.modules:
        _told_matplotlib = True
        reply["matplotlib"] = True  # once: the host builds its shared font cache for later sessions
    changed = files.changed(SCAN_LIMIT, max_files, notes)
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
    _THREAD_CEILING[0] = _thread_ceiling()  # imports resource: before the session dir is on sys.path
    os.makedirs(session_dir, exist_ok=True)
    os.chdir(session_dir)
    _SESSION_DIR[0] = session_dir
    _BASE_PATH[:] = [p for p in sys.path if p and p != session_dir]
    sys.path.insert(0, session_dir)
    sys.argv = [""]
    module = type(sys)("__main__")
    namespace = module.__dict__
    namespace["__builtins__"] = sys.modules["builtins"]
    sys.modules["__main__"] = module  # pickle finds classes and functions defined in cells
    files = _Files(session_dir)
    # Tell the host the worker is up: a worker that dies before this line failed to start (a
    # missing interpreter, a jail it cannot enter), which the host reports as such, not as a crash.
    send_reply(reply_fd, {"status": "ready"}, READY_ID)
    serve(requests, reply_fd, namespace, files, stdio)


def serve(requests, reply_fd, namespace, files, stdio):
    """The request loop: one reply per request, until the host closes the pipe."""
    header = _HEADER
    code_at = 4 + header.size
    while True:
        frame = requests.next()
        if frame is None:  # the host closed the pipe: stop without waiting for user threads
            stdio.flush()
            os._exit(0)
        nonce = b"?"
        try:
            op, nonce, cell, max_repr, max_figures, max_files = header.unpack_from(frame, 4)
            if op == b"r":
                code = frame[code_at:].decode("utf-8", "surrogatepass")
                reply = run_cell(code, cell, (max_repr, max_figures, max_files), namespace, files, stdio)
            else:
                reply = {"status": "error", "error": {"ename": "ProtocolError", "evalue": "unknown op", "traceback": ""}}
        except BaseException as exc:  # e.g. a SIGINT landing while an error was being described
            if os.getpid() != _MAIN_PID:
                os._exit(0)
            reply = {"status": "error", "error": {"ename": type(exc).__name__, "evalue": str(exc), "traceback": ""}}
        frame = code = None  # a big cell's source is not kept alive while idle
        send_reply(reply_fd, reply, nonce)
        stdio.repair()


_WORKER_FILE = main.__code__.co_filename

if __name__ == "__main__":
    main()
