"""Hints the loop adds to an error, found by asking the session itself.

When code imports or uses a name a module does not have, the loop lists the names the module
does have (small models guess plausible names such as ``statistics.population_stddev``).
"""

from __future__ import annotations

import ast
import re

__all__ = ["missing_module_name", "module_names_probe"]

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
    except (ValueError, SyntaxError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
