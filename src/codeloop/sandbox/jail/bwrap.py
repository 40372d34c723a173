"""The bubblewrap command line of a session.

A tmpfs root holding only read-only system directories, the interpreter, the session directory
(writable) and a private size-limited /tmp; fresh /proc and a minimal /dev; every namespace but
(optionally) the network one; all capabilities dropped except those the worker needs to switch
to its session uid. Nothing secret goes on this command line: it is readable in /proc.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from codeloop.sandbox.jail.probe import NAMESPACE_FLAGS, BwrapMode

__all__ = ["bwrap_argv"]

_UID_SWITCH_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


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
