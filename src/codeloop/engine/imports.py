"""The one missing-import fixer: find the standard import a generated program forgot.

Small models write ``hashlib.md5(...)`` or ``factorial(n)`` in a function body without the
import; the program then fails with a NameError however right its logic is. This pass finds
the names a program reads but never binds anywhere, and where such a name is a standard-library
module (``hashlib``) or one of a short list of well-known standard functions and classes
(``factorial``, ``Counter``, ``reduce``), appends the import at the end of the program, at top
level: a function body runs only when called, after the module has finished loading, so the name
is bound by then. Nothing else changes, a program that does not parse is left alone, and only
the standard library is ever imported.

It has two entry points for the two moments a workflow can fix a program:

* :func:`missing_imports` before running, from the program alone (a program that is a whole
  module, such as a benchmark's function: every name it reads must be bound in it);
* :func:`import_for_name_error` after a NameError in a stateful session, by asking the session
  (:data:`Probe`): earlier cells may have bound names the program alone does not show, so only
  a name the program calls or dereferences (``date(...)``, ``np.array``) is looked up, in the
  modules the session itself can import.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from collections.abc import Callable

__all__ = [
    "ALIASES",
    "IMPORT_SOURCES",
    "KNOWN_NAMES",
    "Probe",
    "import_for_name_error",
    "import_probe",
    "missing_imports",
    "parse_statement",
    "undefined_name",
    "used_as_module_or_callable",
]

# Names small models use unqualified, and the standard module that defines them.
KNOWN_NAMES: dict[str, str] = {
    **{name: "math" for name in ("factorial", "gcd", "lcm", "sqrt", "isqrt", "floor", "ceil", "comb", "perm", "prod", "log", "log2", "log10", "pi", "inf")},
    **{name: "collections" for name in ("Counter", "defaultdict", "deque", "OrderedDict", "namedtuple")},
    **{name: "itertools" for name in ("permutations", "combinations", "product", "accumulate", "groupby", "chain", "zip_longest")},
    **{name: "functools" for name in ("reduce", "lru_cache", "cache", "cmp_to_key")},
    **{name: "typing" for name in ("List", "Tuple", "Dict", "Set", "Optional", "Any", "Union", "Callable")},
    **{name: "fractions" for name in ("Fraction",)},
    **{name: "decimal" for name in ("Decimal",)},
    **{name: "heapq" for name in ("heappush", "heappop", "heapify")},
    **{name: "bisect" for name in ("bisect_left", "bisect_right", "insort")},
}


def _bound_and_read(tree: ast.AST) -> tuple[set[str], set[str]]:
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            bound.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
    return bound, read


def missing_imports(program: str) -> list[str]:
    """The import lines ``program`` needs for names it reads but never binds (standard library only)."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return []
    bound, read = _bound_and_read(tree)
    lines: list[str] = []
    for name in sorted(read - bound - set(dir(builtins))):
        if name in KNOWN_NAMES:
            lines.append(f"from {KNOWN_NAMES[name]} import {name}")
        elif name in sys.stdlib_module_names and not name.startswith("_"):
            lines.append(f"import {name}")
    return lines


# -- after a NameError, asking the session ------------------------------------------------------

#: evaluates an expression in the session and returns its repr (None when it failed)
Probe = Callable[[str], str | None]

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


def import_for_name_error(probe: Probe, ename: str, evalue: str, code: str) -> str | None:
    """The import statement a NameError calls for, when the code calls or dereferences that name."""
    name = undefined_name(ename, evalue)
    if name is None or not used_as_module_or_callable(name, code):
        return None
    stmt = parse_statement(probe(import_probe(name)))
    return None if stmt is None or stmt in code else stmt
