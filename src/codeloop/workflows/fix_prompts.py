"""What ``codeloop fix`` tells the model: the function at fault, the failing tests, the evidence.

The unit of a patch is one function: the model sees it with the failing tests' source, the
failure text and a bounded trace of the test through the code (lines run, values), and answers with
the whole corrected function. Small models do this far more reliably than writing a diff.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from codeloop.llm.types import Message
from codeloop.sandbox.tracing import Trace, format_trace
from codeloop.workflows.fix_sandbox import TestOutcome

__all__ = ["SYSTEM", "describe_failure", "fix_messages", "function_header", "spec_messages", "test_source"]

SYSTEM = (
    "You are an expert Python programmer who fixes bugs. You get a function with a bug, the tests it "
    "fails and what happened when they ran. Find the bug from the evidence and reply with the whole "
    "corrected function in one ```python block. Keep the function's name and parameters. Do not "
    "change the tests and do not special-case the test inputs."
)


def test_source(text: str, function: str, limit: int = 1500) -> str:
    """The source of test function ``function`` (or a class's method) in a test module's ``text``."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return ""
    lines = text.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "\n".join(lines[start - 1 : node.end_lineno])[:limit]
    return ""


def describe_failure(test: TestOutcome, limit: int = 700) -> str:
    """The failure in a few lines: a hang with where it spun, or the exception with its message."""
    target = [f for f in test.frames if f.target]
    if test.timed_out:
        where = target[-1] if target else (test.frames[-1] if test.frames else None)
        text = "The test never finished: it was stopped after its time limit"
        if where is not None:
            values = ", ".join(f"{k} = {v}" for k, v in where.locals.items())
            text += f", inside `{where.function}` at line {where.line} (`{where.code}`)"
            if values:
                text += f" with {values}"
        return text + ". There is an endless loop."
    message = test.message.strip()
    if len(message) > limit:
        message = message[:limit] + " ..."
    text = f"{test.type}: {message}" if test.type and test.type != "AssertionError" else message or test.type
    if target:
        f = target[-1]
        values = ", ".join(f"{k} = {v}" for k, v in f.locals.items())
        text += f"\nIt was raised in `{f.function}` at line {f.line}: `{f.code}`"
        if values:
            text += f"\nValues there: {values}"
    return text


def fix_messages(
    *,
    function: str,
    function_source: str,
    module_context: str,
    tests: Sequence[tuple[TestOutcome, str]],
    trace: Trace | None,
    trace_source: str,
    previous: str | None = None,
) -> list[Message]:
    """The chat messages asking for a corrected ``function``."""
    parts = []
    if module_context.strip():
        parts.append(f"The module starts like this:\n```python\n{module_context.rstrip()}\n```\n")
    parts.append(f"This function has a bug:\n```python\n{function_source.rstrip()}\n```\n")
    for test, source in tests:
        if source:
            parts.append(f"It fails this test:\n```python\n{source.rstrip()}\n```")
        else:
            parts.append(f"It fails the test `{test.nodeid}`.")
        parts.append(f"What happened:\n{describe_failure(test)}\n")
    if trace is not None:
        parts.append(
            "A trace of the test through the code (each line that ran, with the values it set):\n"
            f"```\n{format_trace(trace, trace_source, max_chars=1800)}\n```\n"
        )
    if previous:
        parts.append(f"An earlier attempt did not work:\n{previous}\n")
    parts.append(f"Write the corrected `{function.rsplit('.', 1)[-1]}` in full in one ```python block.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def function_header(source: str) -> str:
    """A function's decorators, ``def`` line(s) and docstring, without its body (``source``: the function)."""
    import textwrap

    text = textwrap.dedent(source)
    try:
        node = ast.parse(text).body[0]
    except (SyntaxError, ValueError, IndexError):
        return ""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.body:
        return ""
    first = node.body[0]
    lines = text.splitlines()
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    end = (first.end_lineno or first.lineno) if has_doc else first.lineno - 1
    return "\n".join(lines[:end])


SPEC_SYSTEM = (
    "You are an expert Python programmer. Write the function you are asked for so that it passes the "
    "given tests, in one ```python block. Do not write the tests."
)


def spec_messages(
    *, function: str, header: str, module_context: str, tests: Sequence[tuple[TestOutcome, str]]
) -> list[Message]:
    """Ask for the function written afresh from its signature, docstring and tests (the buggy body hidden:
    small models asked to fix code often copy it back unchanged)."""
    name = function.rsplit(".", 1)[-1]
    parts = []
    if module_context.strip():
        parts.append(f"The module starts like this:\n```python\n{module_context.rstrip()}\n```\n")
    parts.append(f"Write the body of this function:\n```python\n{header.rstrip()}\n    ...\n```\n")
    sources = [src for _t, src in tests if src]
    if sources:
        parts.append("It must pass these tests:\n```python\n" + "\n\n".join(s.rstrip() for s in sources) + "\n```\n")
    parts.append(f"Write the whole function `{name}` in one ```python block.")
    return [{"role": "system", "content": SPEC_SYSTEM}, {"role": "user", "content": "\n".join(parts)}]
