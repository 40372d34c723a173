"""The seccomp filter of a session, compiled on the host into raw BPF.

Compiled here (pyseccomp over the system libseccomp) and handed to bubblewrap, or to the worker,
through a file descriptor: loading libseccomp inside the jail fails once Landlock denies the
library lookup. Denied calls fail with EPERM (EAFNOSUPPORT for socket families) so Python raises
a clean ``PermissionError``; a call from a foreign architecture (32-bit ``int 0x80``) kills.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
from typing import Any

from codeloop.errors import SandboxUnavailable

__all__ = ["DENIED_SYSCALLS", "HOST_VIEW_DENIED", "compile_filter", "filter_fd", "seccomp_available"]

# Calls no user code needs, each one a known way out of (or into) a jail.
DENIED_SYSCALLS: tuple[str, ...] = (
    # other processes' memory and file descriptors
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    # mounts and namespaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig", "fsmount",
    "fspick", "open_tree", "move_mount", "mount_setattr",
    # kernel attack surface
    "bpf", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "uselib",
    "fanotify_init", "personality",
    # host-wide state
    "swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "iopl", "ioperm",
)  # fmt: skip

# Raw numbers of calls newer than the system libseccomp may know (x86_64 / generic numbering).
_DENIED_NUMBERS_X86_64 = {467: "open_tree_attr"}
_HOST_VIEW_NUMBERS_X86_64 = {463: "setxattrat", 466: "removexattrat"}

# Denied when the worker sees the host's filesystem, IPC and processes (no bubblewrap namespaces):
# nothing a session needs, and each could touch something of the host's.
HOST_VIEW_DENIED: tuple[str, ...] = (
    # ownership and extended attributes (Landlock does not cover them)
    "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    # System V IPC: without an IPC namespace these are the host's segments, semaphores and queues
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl",
)  # fmt: skip
# Calls that act on another process named by pid (argument index): allowed for pid 0 (itself) only.
_OTHER_PID_EVERYWHERE = {"prlimit64": 0}
_OTHER_PID_HOST_VIEW = {
    "setpriority": 1, "sched_setaffinity": 0, "sched_setscheduler": 0, "sched_setparam": 0,
    "sched_setattr": 0, "ioprio_set": 1, "migrate_pages": 0, "move_pages": 0,
}  # fmt: skip
# utime calls with a NULL times pointer (argument index) set "now" with mere write access.
_UTIME_NULL_HOST_VIEW = {"utime": 1, "utimes": 1, "utimensat": 2, "futimesat": 2}

_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK = 1, 2, 10, 16
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C
_CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


def _pyseccomp() -> Any:
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as e:  # RuntimeError: "Unable to find libseccomp"
        raise SandboxUnavailable(f"seccomp: cannot load libseccomp through pyseccomp ({e})") from e
    return pyseccomp


def seccomp_available() -> tuple[bool, str]:
    """Whether a filter can be compiled here, and why not."""
    try:
        compile_filter(network=False, host_view=True)
    except SandboxUnavailable as e:
        return False, str(e)
    return True, ""


@functools.lru_cache(maxsize=8)
def compile_filter(network: bool, keep_group: bool = False, host_view: bool = False) -> bytes:
    """The raw BPF program for a session (cached: one compile per process and setting).

    ``keep_group`` also denies setsid/setpgid: with no pid namespace, cgroup or session uid to
    find them by, the worker's processes must stay in its process group to be killed with it.
    ``host_view`` (no bubblewrap namespaces): also deny chown and xattr writes, "touch" (utime
    with no times), System V IPC, and scheduling/priority calls on any other process.
    Everywhere: ``prlimit`` on any process but the caller itself.
    """
    sc = _pyseccomp()
    deny = sc.ERRNO(errno.EPERM)
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        for name in DENIED_SYSCALLS:
            nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
            if nr >= 0:  # negative: not a syscall on this architecture
                flt.add_rule(deny, nr)
        if sc.system_arch() == sc.Arch.X86_64:
            for nr in _DENIED_NUMBERS_X86_64:
                flt.add_rule(deny, nr)
        # clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for flag in _CLONE_NAMESPACE_FLAGS:
            flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        for cmd in (_TIOCSTI, _TIOCLINUX):
            flt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, cmd))
        # kill(-1, sig) signals every process the caller may signal: never what user code means.
        flt.add_rule(deny, "kill", sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, 0xFFFFFFFF))
        if keep_group:
            flt.add_rule(deny, "setsid")
            flt.add_rule(deny, "setpgid")
        others = dict(_OTHER_PID_EVERYWHERE)
        if host_view:
            others.update(_OTHER_PID_HOST_VIEW)
            for name in HOST_VIEW_DENIED:
                if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:
                    flt.add_rule(deny, name)
            if sc.system_arch() == sc.Arch.X86_64:
                for nr in _HOST_VIEW_NUMBERS_X86_64:
                    flt.add_rule(deny, nr)
            for name, arg in _UTIME_NULL_HOST_VIEW.items():
                if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:
                    flt.add_rule(deny, name, sc.Arg(arg, sc.EQ, 0))
        for name, arg in others.items():
            if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:
                flt.add_rule(deny, name, sc.Arg(arg, sc.NE, 0))
        _add_socket_rules(sc, flt, network)
        return _export(flt)
    except OSError as e:
        raise SandboxUnavailable(f"seccomp: libseccomp refused the filter ({e})") from e


def _add_socket_rules(sc: Any, flt: Any, network: bool) -> None:
    """Allow AF_UNIX only, plus inet (and netlink, for address lookups) with ``network=True``."""
    allowed = {_AF_UNIX} | ({_AF_INET, _AF_INET6, _AF_NETLINK} if network else set())
    no_family = sc.ERRNO(errno.EAFNOSUPPORT)
    top = max(allowed) + 1
    for call in ("socket", "socketpair"):
        for family in range(top):
            if family not in allowed:
                flt.add_rule(no_family, call, sc.Arg(0, sc.EQ, family))
        # Every larger value, including ones with high bits set that the kernel would truncate.
        flt.add_rule(no_family, call, sc.Arg(0, sc.GE, top))


def _export(flt: Any) -> bytes:
    fd = os.memfd_create("codeloop-seccomp-export", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            flt.export_bpf(f)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


#: Descriptors handed to a worker are lifted at least this high, clear of the fixed protocol fds.
HIGH_FD = 10


def filter_fd(network: bool, keep_group: bool = False, host_view: bool = False) -> int:
    """A fresh close-on-exec descriptor (>= HIGH_FD) holding the program at offset 0; caller closes it."""
    program = compile_filter(network, keep_group, host_view)
    fd = os.memfd_create("codeloop-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, HIGH_FD)
    finally:
        os.close(fd)
    return high
