"""The visible tests of a problem: the input/output examples written in its docstring.

The repair modes run these, never the hidden tests. HumanEval writes examples in many styles
(doctest ``>>>`` blocks, ``f(x) ==> y``, ``f(x) ➞ y``, ``For lst = ... the output should be ...``,
``Input: ... Output: ...``); each style has a small parser, and an example is kept only when its
call has literal arguments and its expected value is a Python literal, so a misread is dropped
rather than turned into a wrong test.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from codeloop.evals.problems import Problem

__all__ = ["Example", "extract_examples"]

_SEPARATOR = re.compile(r"\s*(?:==>|=>|➞|->|==|=|#\s*returns|#\s*=>|#|returns|should return|should be)\s*")
_FOR_OUTPUT = re.compile(r"For\s+(\w+\s*=.+?),?\s+the (?:output|result) should be\s+(.+)", re.IGNORECASE)
_INPUT_OUTPUT = re.compile(r"Input:\s*(\S[^\n]*)\n\s*Output:\s*(\S[^\n]*)")
_BOOL_WORDS = {"true": "True", "false": "False", "none": "None"}


@dataclass(frozen=True)
class Example:
    """One visible test: ``call`` is an expression using the entry point, ``expected`` a literal."""

    call: str
    expected: str

    def describe(self) -> str:
        return f"{self.call} == {self.expected}"


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _literal_prefix(text: str, trailer_ok: Callable[[str], bool]) -> str | None:
    """The longest prefix of ``text`` that is a Python literal followed by an acceptable trailer."""
    text = text.strip()
    if text.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[text.lower()]
    for end in range(len(text), 0, -1):
        head, rest = text[:end].strip(), text[end:]
        if head and trailer_ok(rest) and _literal(head):
            return head
    return None


def _end_of_value(rest: str) -> bool:
    """What may follow an expected value on its line: nothing, a comment, a remark in brackets, a dot."""
    stripped = rest.strip()
    return stripped in ("", ".") or (rest[:1].isspace() and stripped[:1] in ("#", "("))


def _expected_value(text: str) -> str | None:
    found = _literal_prefix(text, _end_of_value)
    if found is None and "=" in text:
        # "1 + 9 + 0 + 0 = 10": the value is what follows the last '='.
        found = _literal_prefix(text.rsplit("=", 1)[1], _end_of_value)
    return found


def _params(problem: Problem) -> list[str]:
    try:
        tree = ast.parse(problem.prompt)
    except SyntaxError:
        return []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == problem.entry_point:
            return [a.arg for a in node.args.args]
    return []


def _docstring(problem: Problem) -> str:
    """The entry point's docstring as written in the source: escapes like ``\\n`` stay two characters."""
    try:
        tree = ast.parse(problem.prompt)
    except SyntaxError:
        return problem.prompt
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == problem.entry_point:
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                    raw = (ast.get_source_segment(problem.prompt, stmt.value) or "").lstrip("rRuU")
                    quote = 3 if raw[:3] in ('"""', "'''") else 1
                    return inspect.cleandoc(raw[quote:-quote])
            return ""
    return problem.prompt


def _literal_call(source: str, entry_point: str, params: list[str]) -> str | None:
    """Normalise ``f(1, b=2)`` to positional literal arguments; None unless it is such a call."""
    try:
        node = ast.parse(source.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if len(keywords) != len(node.keywords):
        return None
    if keywords:
        # Docstrings name arguments loosely ("Input: nums = [...]"): map them onto the parameters in order.
        if len(args) + len(keywords) != len(params):
            return None
        args += list(keywords.values())
    if params and len(args) != len(params):
        return None
    return f"{entry_point}({', '.join(repr(a) for a in args)})"


def _calls_entry_point(node: ast.AST, entry_point: str) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry_point for n in ast.walk(node)
    )


def _doctest_examples(doc: str, problem: Problem) -> Iterator[Example]:
    try:
        parsed = doctest.DocTestParser().get_examples(doc)
    except ValueError:
        return
    for ex in parsed:
        try:
            node = ast.parse(ex.source.strip(), mode="eval").body
        except SyntaxError:
            continue
        if not _calls_entry_point(node, problem.entry_point):
            continue
        want = ex.want.strip()
        if want:
            expected = _expected_value(want)
            if expected is not None:
                yield Example(ast.unparse(node), expected)
        elif (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.Eq)
            and _literal(ast.unparse(node.comparators[0]))
        ):
            yield Example(ast.unparse(node.left), ast.unparse(node.comparators[0]))


def _balanced_call(text: str, start: int) -> int | None:
    """The index just past the ')' closing the call whose '(' is at ``start``, skipping strings."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _inline_examples(doc: str, problem: Problem, params: list[str]) -> Iterator[Example]:
    pattern = re.compile(rf"(?<![\w.]){re.escape(problem.entry_point)}\s*\(")
    for match in pattern.finditer(doc):
        end = _balanced_call(doc, match.end() - 1)
        if end is None:
            continue
        call = _literal_call(re.sub(r"\n\s*", " ", doc[match.start() : end]), problem.entry_point, params)
        if call is None:
            continue
        line_end = doc.find("\n", end)
        rest = doc[end : line_end if line_end >= 0 else len(doc)]
        sep = _SEPARATOR.match(rest)
        if sep is None or sep.end() == 0:
            continue
        expected = _expected_value(rest[sep.end() :])
        if expected is not None:
            yield Example(call, expected)


def _io_examples(doc: str, problem: Problem, params: list[str]) -> Iterator[Example]:
    for match in _FOR_OUTPUT.finditer(doc):
        expected = _expected_value(match.group(2))
        call = _literal_call(f"{problem.entry_point}({match.group(1)})", problem.entry_point, params)
        if call is None and len(params) == 1:
            # "For N = 1000, the sum of digits will be 1 the output should be ...": the value ends at a comma.
            text = match.group(1).split("=", 1)[1]
            value = _literal_prefix(text, lambda rest: rest.strip() == "" or rest.lstrip().startswith(","))
            call = None if value is None else f"{problem.entry_point}({value})"
        if call is not None and expected is not None:
            yield Example(call, expected)
    for match in _INPUT_OUTPUT.finditer(doc):
        call = _literal_call(f"{problem.entry_point}({match.group(1)})", problem.entry_point, params)
        expected = _expected_value(match.group(2))
        if call is not None and expected is not None:
            yield Example(call, expected)


def extract_examples(problem: Problem, limit: int = 8) -> list[Example]:
    """The docstring's examples for ``problem.entry_point``, deduplicated, at most ``limit``."""
    doc = _docstring(problem)
    params = _params(problem)
    found: list[Example] = []
    for source in (_doctest_examples(doc, problem), _inline_examples(doc, problem, params), _io_examples(doc, problem, params)):
        for example in source:
            if example not in found and all(e.call != example.call for e in found):
                found.append(example)
    return found[:limit]
