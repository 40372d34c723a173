"""The line tracer's host side and the code it injects, run the way a session runs a cell.

The injected code is also exercised inside the real sandbox by the trace-mode tests.
"""

from __future__ import annotations

import ast

import pytest

from codeloop.sandbox.tracing import TraceError, TraceLimits, format_trace, parse_trace, trace_cell


def _run_cell(code: str, namespace: dict[str, object]) -> str:
    """Exec all but the last statement, then the repr of the last expression, like a notebook cell."""
    tree = ast.parse(code)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr)
    exec(compile(tree, "<cell>", "exec"), namespace)
    return repr(eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace))


def _traced(source: str, call: str, entry: str, limits: TraceLimits | None = None) -> str:
    namespace: dict[str, object] = {}
    exec(compile(source, "<program>", "exec"), namespace)
    return _run_cell(trace_cell(call, entry, limits), namespace)


SOURCE = """\
def helper(x):
    return x * 2

def solve(items):
    total = 0
    for item in items:
        total += helper(item)
    return total
"""


def test_values_line_by_line() -> None:
    trace = parse_trace(_traced(SOURCE, "solve([1, 2])", "solve"))
    assert trace.result == "6"
    assert trace.head[0].call_args == {"items": "[1, 2]"}
    changes = [(e.line, e.vars) for e in trace.head if e.function == "solve" and e.vars]
    assert changes[:3] == [(5, {"total": "0"}), (6, {"item": "1"}), (7, {"total": "2"})]
    assert any(e.function == "helper" and e.returned == "2" for e in trace.head)
    text = format_trace(trace, SOURCE)
    assert "line 7   total += helper(item)   # total=2" in text
    assert text.endswith("result: 6")


def test_exception_is_recorded_at_its_line() -> None:
    source = "def f(xs):\n    acc = 0\n    for x in xs:\n        acc += 10 // x\n    return acc\n"
    trace = parse_trace(_traced(source, "f([2, 0])", "f"))
    assert trace.exception == "ZeroDivisionError: integer division or modulo by zero"
    assert any(e.line == 4 and e.exception == "ZeroDivisionError" for e in trace.head)


def test_endless_loop_is_stopped_and_bounded() -> None:
    source = "def spin(n):\n    i = 0\n    while True:\n        i += n\n"
    limits = TraceLimits(head=5, tail=4, max_steps=2000, max_repr=20)
    trace = parse_trace(_traced(source, "spin(1)", "spin", limits))
    assert trace.stopped is not None and "2000 steps" in trace.stopped
    assert len(trace.head) == 5 and len(trace.tail) == 4 and trace.omitted > 1000
    assert "more lines ran here" in format_trace(trace, source)


def test_big_values_are_shortened() -> None:
    source = "def big(n):\n    xs = list(range(n))\n    s = 'a' * n\n    return len(xs)\n"
    trace = parse_trace(_traced(source, "big(100000)", "big", TraceLimits(max_repr=30)))
    values = [v for e in trace.head for v in e.vars.values()]
    assert values and all(len(v) <= 80 for v in values)


def test_format_is_bounded() -> None:
    source = "def loop(n):\n    for i in range(n):\n        j = i * i\n    return n\n"
    trace = parse_trace(_traced(source, "loop(500)", "loop", TraceLimits(head=200, tail=200)))
    assert len(format_trace(trace, source, max_chars=1000)) <= 1100


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        trace_cell("f(", "f")
    with pytest.raises(ValueError):
        trace_cell("f(1)", "f; import os")
    for value in (None, "'not json'", "42", repr('{"call": 1}')):
        with pytest.raises(TraceError):
            parse_trace(value)


def test_the_cell_leaves_only_its_own_name_in_the_session() -> None:
    """The shared tracer code runs in a namespace of its own: none of its names (imports, classes) land
    in the session, where a later cell could come to rely on them."""
    namespace: dict[str, object] = {}
    exec(compile(SOURCE, "<program>", "exec"), namespace)
    before = set(namespace)
    parse_trace(_run_cell(trace_cell("solve([1])", "solve"), namespace))
    assert set(namespace) - before == {"_codeloop_trace"}


def test_the_shared_tracer_code_can_be_shipped() -> None:
    """tracecore goes into the sandbox as text: stdlib imports only, no ``from __future__`` (its text is
    pasted after another file's), and it runs on its own."""
    import sys

    from codeloop.sandbox import tracecore

    text = tracecore.source()
    imported = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    shared: dict[str, object] = {"__name__": "_codeloop_tracecore"}
    exec(compile(text, "<tracecore>", "exec"), shared)
    rec = shared["LineRecorder"](max_repr=10, head=1, tail=1, scan=4, max_vars=2)  # type: ignore[operator]

    def frame_of() -> object:
        m, f, a, b, c = sys, len, "x" * 50, [1], 3  # noqa: F841 - read from the frame
        return sys._getframe()

    # bounded in size and in number, modules and callables left out
    assert rec.data_locals(frame_of()) == {"a": "'xx...xxx'", "b": "[1]"}  # type: ignore[attr-defined]
