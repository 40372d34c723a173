"""Add the standard-library imports a generated program uses but forgot.

Small models write ``hashlib.md5(...)`` or ``factorial(n)`` in a function body without the
import; the program then fails with a NameError however right its logic is. This pass finds
the names a program reads but never binds anywhere, and where such a name is a standard-library
module (``hashlib``) or one of a short list of well-known standard functions and classes
(``factorial``, ``Counter``, ``reduce``), appends the import at the end of the program, at top
level: a function body runs only when called, after the module has finished loading, so the name
is bound by then. Nothing else changes, a program that does not parse is left alone, and only
the standard library is ever imported.
"""

from __future__ import annotations

import ast
import builtins
import sys

__all__ = ["missing_imports"]

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
