"""The host paths a sandboxed Python needs to read, and nothing else.

One list feeds both the bubblewrap binds and the Landlock read rules, so the two layers agree.
``/etc`` is exposed entry by entry: ``shadow``, ``ssh`` and friends never enter the jail.
"""

from __future__ import annotations

import functools
import os
import site
import sys
from pathlib import Path

__all__ = ["DEVICES", "ETC_ENTRIES", "SYSTEM_DIRS", "python_paths", "reachable_by_others", "system_paths"]

SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# What Python, numpy, matplotlib and a shell read from /etc; no secrets among them.
ETC_ENTRIES: tuple[str, ...] = (
    "alternatives", "ca-certificates", "ca-certificates.conf", "fonts", "group", "host.conf",
    "hostname", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "locale.alias", "localtime",
    "magic", "matplotlibrc", "mime.types", "nsswitch.conf", "os-release", "passwd", "protocols",
    "python3", "services", "ssl", "timezone", "zoneinfo",
)  # fmt: skip
NETWORK_ETC_ENTRIES: tuple[str, ...] = ("resolv.conf", "gai.conf")
DEVICES: tuple[str, ...] = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def system_paths(network: bool = False) -> list[str]:
    """System directories and the safe /etc entries that exist on this host."""
    etc = ETC_ENTRIES + (NETWORK_ETC_ENTRIES if network else ())
    return [p for p in SYSTEM_DIRS if os.path.lexists(p)] + [
        f"/etc/{e}" for e in etc if os.path.lexists(f"/etc/{e}")
    ]


@functools.lru_cache(maxsize=1)
def python_paths() -> tuple[str, ...]:
    """The interpreter's prefixes and installed package dirs (plus editable installs' roots).

    Directories already under another entry or a system directory are dropped, and so is the
    caller's working directory that ``sys.path`` may hold.
    """
    candidates = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    candidates += site.getsitepackages()
    for sp in site.getsitepackages():
        candidates += _pth_dirs(Path(sp))
    cwd = os.getcwd()
    result: list[str] = []
    for c in sorted({os.path.realpath(c) for c in candidates if c}, key=len):
        if not os.path.isdir(c) or c == cwd or c == "/":
            continue
        if any(_under(c, r) for r in [*result, *SYSTEM_DIRS]):
            continue
        result.append(c)
    return tuple(result)


def _pth_dirs(site_dir: Path) -> list[str]:
    dirs = []
    for pth in site_dir.glob("*.pth"):
        try:
            lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")) and os.path.isabs(line):
                dirs.append(line)
    return dirs


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def reachable_by_others(path: str | os.PathLike[str], need: int = os.R_OK) -> bool:
    """Whether a uid with no special rights could reach ``path`` (every parent o+x, then ``need``)."""
    p = Path(os.path.realpath(path))
    try:
        for parent in reversed(p.parents):
            if not parent.stat().st_mode & 0o001:
                return False
        mode = p.stat().st_mode
    except OSError:
        return False
    bits = (
        (0o004 if need & os.R_OK else 0) | (0o002 if need & os.W_OK else 0) | (0o001 if need & os.X_OK else 0)
    )
    return mode & bits == bits
