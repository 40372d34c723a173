"""Help with the errors small models make most, found by asking the session itself.

When code imports or uses a name a module does not have, the loop lists the names the module
does have (small models guess plausible names such as ``statistics.population_stddev``).
A KeyError comes with the columns of the session's DataFrames.
(A name it forgot to import is the engine's: :mod:`codeloop.engine.imports`.)
"""

from __future__ import annotations

import ast
import re

from codeloop.engine.imports import Probe

__all__ = ["columns_hint", "missing_module_name", "module_names_probe", "names_hint", "parse_names"]

_IMPORT = re.compile(r"cannot import name '([\w]+)' from '([\w.]+)'")
_ATTR = re.compile(r"module '([\w.]+)' has no attribute '([\w]+)'")
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def missing_module_name(ename: str, evalue: str) -> tuple[str, str] | None:
    """``(module, name)`` when the error says a module lacks a name, else None."""
    if ename == "ImportError" and (m := _IMPORT.search(evalue)):
        return m.group(2), m.group(1)
    if ename == "AttributeError" and (m := _ATTR.search(evalue)):
        return m.group(1), m.group(2)
    return None


def module_names_probe(module: str) -> str | None:
    """Code that evaluates to the public names of ``module`` (None for a name that is not a module path)."""
    if not _MODULE.match(module):
        return None
    return (
        f"sorted(n for n in dir(__import__('importlib').import_module({module!r})) if not n.startswith('_'))"
    )


def parse_names(value: str | None) -> list[str]:
    """The list a probe returned (its repr), or [] if it is not a list of names."""
    if not value:
        return []
    try:
        names = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):  # worker-controlled text
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []




def names_hint(probe: Probe, ename: str, evalue: str) -> str | None:
    """For "module M has no name X" errors: a line listing the names M does have."""
    missing = missing_module_name(ename, evalue)
    code = module_names_probe(missing[0]) if missing else None
    if missing is None or code is None:
        return None
    names = parse_names(probe(code))
    if not names:
        return None
    shown = ", ".join(names[:60]) + (" ..." if len(names) > 60 else "")
    return f"Module {missing[0]} has no {missing[1]!r}; the names it has are: {shown}"


_FRAMES_PROBE = (
    "{k: [str(c) for c in v.columns][:40] for k, v in globals().items() "
    "if type(v).__name__ == 'DataFrame' and not k.startswith('_')}"
)


def columns_hint(probe: Probe, ename: str, evalue: str) -> str | None:
    """For a KeyError: the columns of the session's DataFrames (small models guess column names)."""
    if ename != "KeyError":
        return None
    try:
        frames = ast.literal_eval(probe(_FRAMES_PROBE) or "{}")
    except (ValueError, SyntaxError, MemoryError, RecursionError):  # worker-controlled text
        return None
    if not isinstance(frames, dict) or not frames:
        return None
    listed = "; ".join(f"{name}: {cols}" for name, cols in list(frames.items())[:5])
    return f"KeyError {evalue}: the DataFrames have these columns: {listed}"
