"""Cheap checks on the model's code before it runs, for the failure habits of small models."""

from __future__ import annotations

import ast

__all__ = ["NOT_COMPUTED", "SAME_FAILING_CODE", "normalise_code", "prints_only_literals"]

NOT_COMPUTED = (
    "That code only prints a value you typed yourself, so nothing was computed. "
    "Write a ```python block that computes the answer from the data in the task and prints it."
)
SAME_FAILING_CODE = (
    "That is the same code that just failed, so it would fail the same way. "
    "Read the error and try a different approach in a new ```python block."
)


def prints_only_literals(code: str) -> bool:
    """True when the program only states constants: ``print('olleh')``, ``42``, ``x = 20; print(x)``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    constants: set[str] = set()

    def literal(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) or (isinstance(node, ast.Name) and node.id in constants)

    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and all(isinstance(t, ast.Name) for t in node.targets)
            and literal(node.value)
        ):
            constants.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Expr) and literal(node.value):
            continue
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "print"
            and all(literal(a) for a in node.value.args)
        ):
            continue
        else:
            return False
    return bool(tree.body)


def normalise_code(code: str) -> str:
    """The code without comments, blank lines and formatting, to spot a repeat; the text itself if unparsable."""
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError):
        return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())
