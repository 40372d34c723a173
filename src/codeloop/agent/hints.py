"""Help with the errors small models make most, found by asking the session itself.

When code imports or uses a name a module does not have, the loop lists the names the module
does have (small models guess plausible names such as ``statistics.population_stddev``).
A KeyError comes with the columns of the session's DataFrames.
When code calls a name it forgot to import (``date(...)``, ``np.array``), the loop finds the
standard import for it, adds that line and runs the cell again.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

__all__ = [
    "Probe",
    "columns_hint",
    "import_probe",
    "missing_import",
    "missing_module_name",
    "module_names_probe",
    "names_hint",
    "parse_names",
    "parse_statement",
    "undefined_name",
    "used_as_module_or_callable",
]

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


# Where a name a small model forgot to import usually lives, checked in this order.
IMPORT_SOURCES = (
    "math",
    "datetime",
    "collections",
    "itertools",
    "functools",
    "statistics",
    "fractions",
    "decimal",
)
ALIASES = {"np": "import numpy as np", "pd": "import pandas as pd", "plt": "import matplotlib.pyplot as plt"}
_NAME_ERROR = re.compile(r"^name '([A-Za-z_]\w*)' is not defined")


def undefined_name(ename: str, evalue: str) -> str | None:
    """The name of a NameError ("name 'date' is not defined" -> "date"), else None."""
    if ename != "NameError":
        return None
    m = _NAME_ERROR.match(evalue)
    return m.group(1) if m else None


def import_probe(name: str) -> str:
    """Code whose value is the import statement that defines ``name`` (or None), found in the session."""
    return (
        f"next((f'from {{m}} import {{n}}' for n in [{name!r}] for m in {IMPORT_SOURCES!r} "
        f"if hasattr(__import__(m), n)), {ALIASES.get(name)!r})"
    )


def used_as_module_or_callable(name: str, code: str) -> bool:
    """Whether ``code`` calls ``name(...)`` or reads ``name.attr``: a forgotten import, not a typo'd variable."""
    return re.search(rf"(?<![\w.]){re.escape(name)}\s*[.(]", code) is not None


def parse_statement(value: str | None) -> str | None:
    """The import statement an ``import_probe`` returned (its repr), or None."""
    if not value:
        return None
    try:
        stmt = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):  # worker-controlled text
        return None
    return stmt if isinstance(stmt, str) and stmt.startswith(("from ", "import ")) else None


Probe = Callable[[str], str | None]  # evaluates an expression in the session, returns its repr


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


def missing_import(probe: Probe, ename: str, evalue: str, code: str) -> str | None:
    """The import statement a NameError calls for, when the code calls or dereferences that name."""
    name = undefined_name(ename, evalue)
    if name is None or not used_as_module_or_callable(name, code):
        return None
    stmt = parse_statement(probe(import_probe(name)))
    return None if stmt is None or stmt in code else stmt


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
