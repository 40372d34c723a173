"""Patches as whole-file edits: unified diffs, function replacement, and the guard against cheating.

A candidate fix is a set of new file texts. ``replace_function`` builds one from a model's rewrite
of a single function (small models rewrite a function far more reliably than they write a diff);
``unified_diff`` shows it; ``review_change`` rejects a change that edits, adds or deletes a test
file, deletes tests or assertions, or games the test run (skipping, exiting, patching builtins,
inspecting the caller).
"""

from __future__ import annotations

import ast
import difflib
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from codeloop.workflows.snapshot import is_test_path

__all__ = [
    "FunctionSpan",
    "count_asserts",
    "find_function",
    "functions_in",
    "replace_function",
    "review_change",
    "unified_diff",
]


def unified_diff(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """A ``git``-style unified diff (``a/`` and ``b/`` prefixes) of every file that differs."""
    out: list[str] = []
    for rel in sorted(set(old) | set(new)):
        before, after = old.get(rel), new.get(rel)
        if before == after:
            continue
        a = [] if before is None else before.splitlines(keepends=True)
        b = [] if after is None else after.splitlines(keepends=True)
        for line in difflib.unified_diff(
            a, b, "/dev/null" if before is None else f"a/{rel}", "/dev/null" if after is None else f"b/{rel}"
        ):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


@dataclass(frozen=True)
class FunctionSpan:
    """A function in a module: dotted name (``Class.method``), 1-based lines, indentation."""

    name: str
    start: int  # first line, decorators included
    end: int
    indent: str

    def source(self, text: str) -> str:
        return "".join(text.splitlines(keepends=True)[self.start - 1 : self.end])


def functions_in(source: str) -> list[FunctionSpan]:
    """Every function and method of ``source`` (nested functions are part of their parent)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    spans: list[FunctionSpan] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                line = lines[start - 1]
                indent = line[: len(line) - len(line.lstrip())]
                spans.append(FunctionSpan(prefix + node.name, start, node.end_lineno or node.lineno, indent))
            elif isinstance(node, ast.ClassDef):
                visit(node.body, prefix + node.name + ".")

    visit(tree.body, "")
    return spans


def find_function(source: str, name: str) -> FunctionSpan | None:
    """The function called ``name`` (dotted or bare) in ``source``, or None."""
    spans = functions_in(source)
    for span in spans:
        if span.name == name:
            return span
    bare = name.rsplit(".", 1)[-1]
    matches = [s for s in spans if s.name.rsplit(".", 1)[-1] == bare]
    return matches[0] if len(matches) == 1 else None


def function_at_line(source: str, line: int) -> FunctionSpan | None:
    """The innermost function whose span holds ``line``."""
    best = None
    for span in functions_in(source):
        if span.start <= line <= span.end and (best is None or span.start >= best.start):
            best = span
    return best


def _new_imports(code_tree: ast.Module, source_tree: ast.Module) -> list[str]:
    have = {ast.unparse(n) for n in source_tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
    return [
        ast.unparse(n)
        for n in code_tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
        and ast.unparse(n) not in have
        and not any(alias.name == "*" for alias in n.names)  # a star import the model added by habit
    ]


def replace_function(source: str, name: str, code: str) -> str | None:
    """``source`` with function ``name`` replaced by the definition of the same name in ``code``.

    ``code`` may hold the function alone, inside its class, at any indentation, with imports (new
    ones are added at the top of the module) and other definitions (ignored). None when ``code``
    does not parse or defines no function of that name, or the result does not parse.
    """
    span = find_function(source, name)
    if span is None:
        return None
    bare = name.rsplit(".", 1)[-1]
    code = textwrap.dedent(code.expandtabs(4))
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    node = next(
        (
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == bare
        ),
        None,
    )
    if node is None:
        return None
    code_lines = code.splitlines()
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    block = textwrap.dedent("\n".join(code_lines[start - 1 : node.end_lineno]))
    new_block = "".join(span.indent + line if line.strip() else "\n" for line in block.splitlines(keepends=True))
    if not new_block.endswith("\n"):
        new_block += "\n"
    lines = source.splitlines(keepends=True)
    result_lines = [*lines[: span.start - 1], new_block, *lines[span.end :]]
    result = "".join(result_lines)
    try:
        imports = _new_imports(tree, ast.parse(source))
    except SyntaxError:
        imports = []
    if imports:
        result = _add_imports(result, imports)
    try:
        ast.parse(result)
    except (SyntaxError, ValueError):
        return None
    return result


def _add_imports(source: str, imports: list[str]) -> str:
    tree = ast.parse(source)
    after = 0  # the line after the docstring, __future__ imports and other imports at the top
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        if is_doc or isinstance(node, ast.Import | ast.ImportFrom):
            after = node.end_lineno or after
        else:
            break
    lines = source.splitlines(keepends=True)
    # no imports before: the new ones get a blank line around them
    blank = [] if any(isinstance(n, ast.Import | ast.ImportFrom) for n in tree.body) else ["\n"]
    before = blank if after else []
    return "".join([*lines[:after], *before, *(i + "\n" for i in imports), *blank, *lines[after:]])


def count_asserts(source: str) -> int:
    """``assert`` statements plus calls of ``assert*``/``pytest.raises``-style checks in ``source``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return 0
    n = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            n += 1
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if fname.startswith("assert") or fname in ("raises", "warns", "approx"):
                n += 1
    return n


def _test_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    return {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test")
    }


#: things a source patch must not add: ways to make tests pass without fixing the code
_GAMING = [
    (re.compile(r"\bpytest\b"), "uses pytest in the code under test"),
    (re.compile(r"\bunittest\b"), "uses unittest in the code under test"),
    (re.compile(r"\bsys\.exit\b|\bos\._exit\b|\bquit\(|\bexit\("), "exits the process"),
    (re.compile(r"\bsys\.modules\b|\bbuiltins\b|__builtins__"), "patches modules or builtins"),
    (re.compile(r"\b_getframe\b|\binspect\.(stack|currentframe|getouterframes)\b|\bsettrace\b"), "inspects its caller"),
    (re.compile(r"\bPYTEST_|\bos\.environ\b"), "reads the test environment"),
    (re.compile(r"\bsubprocess\b|\bos\.(system|kill|remove|unlink)\b|\bshutil\.rmtree\b"), "runs commands or deletes files"),
]


def review_change(
    old: Mapping[str, str], new: Mapping[str, str], *, is_test: Callable[[str], bool] = is_test_path
) -> list[str]:
    """Why the change from ``old`` to ``new`` (relative path -> text) must be rejected; [] if it may stand.

    Rejected: any added, deleted or edited test file (which also rules out deleted tests and weakened
    assertions there), any deleted file, a source file that no longer parses, fewer assertions in a
    source file, and source lines added that game the test run.
    """
    reasons: list[str] = []
    for rel in sorted(set(old) | set(new)):
        before, after = old.get(rel), new.get(rel)
        if before == after:
            continue
        if is_test(rel):
            if after is None:
                reasons.append(f"deletes the test file {rel}")
                continue
            if before is None:
                reasons.append(f"adds the test file {rel}")
                continue
            lost = _test_names(before) - _test_names(after)
            if lost:
                reasons.append(f"deletes tests in {rel}: {', '.join(sorted(lost))}")
            if count_asserts(after) < count_asserts(before):
                reasons.append(f"removes assertions from {rel}")
            reasons.append(f"edits the test file {rel}")
            continue
        if after is None:
            reasons.append(f"deletes {rel}")
            continue
        if rel.endswith(".py"):
            try:
                ast.parse(after)
            except (SyntaxError, ValueError) as e:
                reasons.append(f"{rel} no longer parses: {e}")
                continue
            if before is not None and count_asserts(after) < count_asserts(before):
                reasons.append(f"removes assertions from {rel}")
            old_lines = set((before or "").splitlines())
            added = "\n".join(line for line in after.splitlines() if line not in old_lines)
            for pattern, why in _GAMING:
                if pattern.search(added):
                    reasons.append(f"{rel}: the change {why}")
    return reasons
