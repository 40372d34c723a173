"""The part of the jail that runs inside the worker, before any user code.

Stdlib only and free of package imports: the worker loads this file by path inside the jail,
where nothing but the interpreter and this directory are visible. The host hands the plan over in
the ``CODELOOP_JAIL`` environment variable (JSON): a list of steps, each a function of this file
(or of a stdlib-only file the plan names, which the jail makes readable) and its arguments, in the
order of the layer registry (``sandbox/layers.py``): rlimits, the drop to the session uid (or of
every capability), the seccomp filter (only when bubblewrap did not load it) and Landlock. Every
step that was asked for and fails raises, so the worker dies before running user code.
"""

from __future__ import annotations

import ctypes
import os
import resource
import stat

# Imported for the type checker only: typing costs milliseconds of every worker start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, MutableMapping
    from typing import Any

__all__ = [
    "ENV_VAR",
    "JailSetupError",
    "apply_from_env",
    "apply_plan",
    "close_stray_fds",
    "drop_capabilities",
    "drop_privileges",
    "landlock_abi",
    "landlock_restrict",
    "load_seccomp_bpf",
    "load_seccomp_fd",
    "read_program",
]

ENV_VAR = "CODELOOP_JAIL"


class JailSetupError(OSError):
    """A layer the host asked for could not be applied inside the worker."""


# --- syscalls ---------------------------------------------------------------------------------

# Landlock syscalls share one number on every architecture but alpha (added after the unification).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}

_libc: Any = None


def _lib() -> Any:
    global _libc
    if _libc is None:
        # CDLL(None) resolves symbols already loaded into the interpreter (libc): no library
        # lookup on disk, which Landlock or a bare mount namespace could deny.
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        lib.prctl.restype = ctypes.c_int
        lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc = lib
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise JailSetupError(err, f"{what}: {os.strerror(err)}")
    return result


def _no_new_privs() -> None:
    _check(_lib().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


# --- rlimits ----------------------------------------------------------------------------------

_RLIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
}


def apply_rlimits(limits: Mapping[str, int]) -> None:
    """Set soft and hard limits (hard too, so user code cannot raise them again).

    CPU time gets one second of grace above the soft limit: SIGXCPU (a clear cause of death)
    comes first, SIGKILL only if the code ignores it.
    """
    for name, value in limits.items():
        which = _RLIMITS[name]
        _soft, hard = resource.getrlimit(which)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        new_hard = new + 1 if name == "cpu" and (hard == resource.RLIM_INFINITY or new < hard) else new
        try:
            resource.setrlimit(which, (new, new_hard))
        except (OSError, ValueError) as e:
            raise JailSetupError(getattr(e, "errno", None) or 1, f"setrlimit({name}={new}): {e}") from e


# --- privileges -------------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _clear_capabilities() -> None:
    machine = os.uname().machine
    nr = _SYS_CAPSET.get(machine)
    if nr is None:
        return  # setresuid already cleared effective and permitted; inheritable is inert under NNP
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_lib().syscall(nr, ctypes.byref(header), ctypes.byref(data)), "capset")


def drop_capabilities() -> None:
    """Give up every capability (bounding set too, where CAP_SETPCAP allows) but keep the uid."""
    lib = _lib()
    for cap in range(_cap_last() + 1):
        lib.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: NNP still holds
    lib.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _clear_capabilities()
    _no_new_privs()


def _cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good: no groups, no capabilities, an empty bounding set.

    Needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP (bubblewrap keeps exactly those).
    """
    lib = _lib()
    for cap in range(_cap_last() + 1):
        if lib.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            _check(-1, f"prctl(PR_CAPBSET_DROP, {cap})")
    lib.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise JailSetupError(e.errno or 1, f"cannot switch to uid {uid}: {e.strerror}") from e
    _clear_capabilities()
    _no_new_privs()
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise JailSetupError(1, f"uid switch to {uid} did not hold")


# --- seccomp ----------------------------------------------------------------------------------


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def read_program(fd: int) -> bytes:
    """Read a BPF program the host handed over on ``fd``, then close ``fd``."""
    chunks = []
    try:
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        pass  # a pipe: read from where it is
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def load_seccomp_bpf(program: bytes) -> None:
    """Install a raw BPF filter (compiled on the host) on this process and its future children."""
    if not program or len(program) % 8:
        raise JailSetupError(22, f"seccomp program of {len(program)} bytes is not BPF")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _no_new_privs()
    _check(
        _lib().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0),
        "prctl(PR_SET_SECCOMP)",
    )


def load_seccomp_fd(fd: int) -> None:
    """Install the filter the host handed over on ``fd`` (and close ``fd``)."""
    load_seccomp_bpf(read_program(fd))


# --- Landlock ---------------------------------------------------------------------------------

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
# Write access to the session: everything but device nodes.
WRITE = (_FS_BY_ABI[5] & ~(FS_MAKE_CHAR | FS_MAKE_BLOCK | FS_IOCTL_DEV)) | READ
DEVICE = FS_READ_FILE | FS_WRITE_FILE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel, 0 when it has none (or it is disabled)."""
    try:
        lib = _lib()
    except OSError:
        return 0
    version = lib.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    return _FS_BY_ABI[min(abi, 5)]


def landlock_restrict(
    read: Iterable[str], write: Iterable[str], devices: Iterable[str] = (), allow_tcp: bool = False
) -> int:
    """Restrict this process and its future children; returns the ABI used.

    ``read`` paths get read+execute, ``write`` paths everything but device creation, ``devices``
    read+write (for /dev/null and friends). With ABI >= 4 TCP bind/connect are denied unless
    ``allow_tcp``; with ABI >= 6 signals and abstract UNIX sockets stay inside the sandbox.
    Missing paths are skipped: a rule for a path that does not exist grants nothing anyway.
    """
    abi = landlock_abi()
    if abi < 1:
        raise JailSetupError(95, "Landlock is not available in this kernel")
    lib = _lib()
    handled_fs = _handled_fs(abi)
    attr = _RulesetAttr(handled_fs, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        if not allow_tcp:
            attr.net = NET_BIND_TCP | NET_CONNECT_TCP
    if abi >= 6:
        size = 24
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset = _check(
        lib.syscall(
            _SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
        ),
        "landlock_create_ruleset",
    )
    try:
        for paths, access in ((read, READ), (write, WRITE), (devices, DEVICE)):
            for path in paths:
                _add_path_rule(ruleset, path, access & handled_fs)
        _no_new_privs()
        _check(
            lib.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)
    return abi


def _add_path_rule(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except (FileNotFoundError, PermissionError):
        return  # a path this process cannot even reach needs no rule: a rule only grants
    except OSError as e:
        raise JailSetupError(e.errno or 1, f"Landlock rule for {path}: {e.strerror}") from e
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FILE_ONLY
        rule = _PathBeneath(access, fd)
        _check(
            _lib().syscall(
                _SYS_LANDLOCK_ADD_RULE,
                ctypes.c_int(ruleset),
                ctypes.c_int(1),
                ctypes.byref(rule),
                ctypes.c_uint32(0),
            ),
            f"landlock_add_rule({path})",
        )
    finally:
        os.close(fd)


# --- the whole plan ---------------------------------------------------------------------------


def close_stray_fds(keep_below: int, keep: Iterable[int] = ()) -> None:
    """Close every descriptor >= ``keep_below`` but ``keep``: nothing the host leaked may reach user code."""
    kept = set(keep)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(keep_below, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    for fd in fds:
        if fd >= keep_below and fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass


def _find_step(name: str, file: str | None, loaded: dict[str, dict[str, Any]]) -> Any:
    """The step function ``name``: of this file, or of ``file`` (loaded by path, once)."""
    if file is None:
        space = globals()
    elif file in loaded:
        space = loaded[file]
    else:
        try:
            with open(file, "rb") as f:
                code = compile(f.read(), file, "exec")
        except OSError as e:
            raise JailSetupError(e.errno or 1, f"in-worker steps {file}: {e.strerror}") from e
        space = loaded[file] = {"__name__": "codeloop_jail_step", "__file__": file}
        exec(code, space)
    step = space.get(name)
    if name.startswith("_") or not callable(step):
        raise JailSetupError(22, f"no in-worker step {name!r} in {file or 'inworker.py'}")
    return step


def apply_plan(plan: Mapping[str, Any]) -> dict[str, bool]:
    """Apply every step of ``plan`` (the host's JSON), in its order; returns which steps ran.

    Every step is found (its file read) before any runs: a later step's file need not stay
    readable once the uid drops or Landlock holds.
    """
    loaded: dict[str, dict[str, Any]] = {}
    steps = [
        (name, _find_step(name, (file or [None])[0], loaded), kwargs)
        for name, kwargs, *file in plan.get("steps", ())
    ]
    # before RLIMIT_NOFILE hides the high ones; the descriptors steps read stay open until then
    close_stray_fds(int(plan.get("keep_fds_below", 5)), plan.get("keep_fds", ()))
    if plan.get("umask") is not None:
        os.umask(int(plan["umask"]))
    done: dict[str, bool] = {}
    for name, step, kwargs in steps:
        step(**kwargs)
        done[name] = True
    return done


def apply_from_env(environ: MutableMapping[str, str] | None = None) -> dict[str, bool]:
    """Read the plan from ``CODELOOP_JAIL`` (and remove it from the environment), then apply it."""
    env = os.environ if environ is None else environ
    raw = env.pop(ENV_VAR, None)
    if not raw:
        return {}
    try:
        plan = _loads(raw)
    except (ValueError, StopIteration) as e:
        raise JailSetupError(22, f"{ENV_VAR} is not valid JSON: {e}") from e
    if not isinstance(plan, dict):
        raise JailSetupError(22, f"{ENV_VAR} must hold a JSON object")
    return apply_plan(plan)


def _loads(text: str) -> Any:
    """JSON without the json package (which imports re: milliseconds of every start)."""
    try:
        import _json
    except ImportError:  # pragma: no cover - CPython has it
        import json

        return json.loads(text)

    class _Context:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float

    value, end = _json.make_scanner(_Context())(text, 0)  # type: ignore[arg-type]  # duck-typed context
    if end != len(text):
        raise ValueError("trailing data after the JSON value")
    return value
