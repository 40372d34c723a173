"""The host paths a sandboxed Python needs to read, and nothing else.

One list feeds both the bubblewrap binds and the Landlock read rules, so the two layers agree.
``/etc`` is exposed entry by entry: ``shadow``, ``ssh`` and friends never enter the jail.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import site
import subprocess
import sys
from pathlib import Path

__all__ = [
    "DEVICES",
    "ETC_ENTRIES",
    "SYSTEM_DIRS",
    "exposes_home",
    "interpreter_paths",
    "python_paths",
    "reachable_by_others",
    "system_paths",
]

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
    return tuple(_prune(candidates, exclude=(os.getcwd(),)))


def _prune(candidates: list[str], exclude: tuple[str, ...] = ()) -> list[str]:
    """Existing directories, each once, none under another or a system directory, none that
    would expose a home directory (see ``exposes_home``)."""
    result: list[str] = []
    for c in sorted({os.path.realpath(c) for c in candidates if c}, key=len):
        if not os.path.isdir(c) or c in exclude or c == "/" or exposes_home(c):
            continue
        if any(_under(c, r) for r in [*result, *SYSTEM_DIRS]):
            continue
        result.append(c)
    return result


def _homes() -> set[str]:
    homes = {os.path.realpath(os.path.expanduser("~"))}
    for uid in {os.getuid(), os.geteuid()}:
        try:
            homes.add(os.path.realpath(pwd.getpwuid(uid).pw_dir))
        except (KeyError, OSError):
            pass
    homes.add("/home")
    return {h for h in homes if h and h != "/"}


def exposes_home(path: str) -> bool:
    """Whether binding ``path`` would show a home directory, or a dot-directory in one
    (``~/.local``, ``~/.ssh``): true for a home, anything above one, and ``~/.<name>`` itself.
    A directory deeper inside (``~/.local/share/uv/python/cpython-3.12``) is fine."""
    real = os.path.realpath(path)
    for home in _homes():
        if _under(home, real):  # the home itself, or a directory that contains it
            return True
        parent, name = os.path.split(real)
        if parent == home and name.startswith("."):
            return True
    return False


_PROBE = (
    "import json, os, site, sys, sysconfig\n"
    "paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,\n"
    "         os.path.dirname(os.path.realpath(sys.executable))]\n"
    "paths += [v for k, v in sysconfig.get_paths().items() if k in ('stdlib', 'platstdlib', 'purelib', 'platlib')]\n"
    "paths += site.getsitepackages()\n"
    "print(json.dumps(paths))\n"
)


@functools.lru_cache(maxsize=8)
def interpreter_paths(python: str) -> tuple[str, ...]:
    """The directories ``python`` itself says it needs (its prefixes, standard library and site
    packages, with editable installs' roots), asked of it once per process. Never its bin
    directory's parent by guesswork: ``~/bin/python`` would expose all of ``~``."""
    try:
        done = subprocess.run(
            [python, "-I", "-c", _PROBE],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
            check=False,
        )
        found = json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        found = []
    candidates = [str(p) for p in found if isinstance(p, str)]
    for sp in list(candidates):
        if sp.endswith("-packages"):
            candidates += _pth_dirs(Path(sp))
    return tuple(_prune(candidates))


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
