"""Run a command on a simulated degraded host, like a default Docker container.

Root, but without CAP_SYS_ADMIN (no mounts), with a seccomp profile that refuses every kind of
namespace (so bubblewrap can use neither plain nor user namespaces), and with the cgroup
filesystem read-only. The sandbox must then hold on its remaining layers (Landlock, seccomp,
rlimits) or refuse with a clear message.

    python tests/security/degraded_host.py -- python -m pytest tests/security

Must start as root (it uses CAP_SYS_ADMIN once, to make its private cgroup mounts read-only).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

import pyseccomp as sc

CLONE_NEWNS = 0x00020000
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP = 24
CAP_SYS_ADMIN = 21


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def read_only_cgroups(libc: ctypes.CDLL) -> None:
    """A private mount namespace in which every cgroup mount is read-only (as Docker mounts them)."""
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mountpoint in sorted((m for m in mounts if m.startswith("/sys/fs/cgroup")), key=len, reverse=True):
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        _check(libc.mount(None, mountpoint.encode(), None, flags, None), f"remount {mountpoint} read-only")


def no_namespaces_filter() -> None:
    """Refuse namespace creation, joining and mounts, as Docker's default seccomp profile does."""
    flt = sc.SyscallFilter(sc.ALLOW)
    for name in (
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsmount",
        "open_tree",
        "move_mount",
    ):
        flt.add_rule(sc.ERRNO(errno.EPERM), name)
    for flag in NAMESPACE_FLAGS:
        flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    flt.load()


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    if os.geteuid() != 0:
        print("degraded_host.py: must run as root", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    read_only_cgroups(libc)
    _check(libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0), "drop CAP_SYS_ADMIN")
    no_namespaces_filter()  # loaded while we still hold CAP_SYS_ADMIN: no no_new_privs needed
    os.environ["CODELOOP_DEGRADED_HOST"] = "1"
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
