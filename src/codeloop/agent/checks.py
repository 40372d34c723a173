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
    """True when every statement just prints or states constants: ``print('olleh')``, ``42``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    if not tree.body:
        return False
    for node in tree.body:
        if not isinstance(node, ast.Expr):
            return False
        value = node.value
        if isinstance(value, ast.Constant):
            continue
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "print"
            and all(isinstance(a, ast.Constant) for a in value.args)
        ):
            continue
        return False
    return True


def normalise_code(code: str) -> str:
    """The code without comments, blank lines and formatting, to spot a repeat; the text itself if unparsable."""
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError):
        return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())
