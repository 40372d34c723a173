"""Running a candidate on the docstring's examples in the real sandbox."""

from __future__ import annotations

import pytest

from codeloop.evals.examples import Example
from codeloop.evals.problems import Problem
from codeloop.evals.sessions import SessionFactory
from codeloop.evals.visible import _read_verdict, run_visible

PROMPT = 'def f(x):\n    """\n    >>> f(1)\n    1\n    """\n'
PROBLEM = Problem("T/0", PROMPT, "f", "def check(candidate):\n    pass\n", "    return x\n")
EXAMPLES = [Example("f(1)", "1"), Example("f(2)", "2"), Example("f(3)", "3"), Example("f(0.5)", "0.5000000001")]


def test_all_pass_with_float_tolerance(open_session: SessionFactory) -> None:
    report = run_visible(PROBLEM, "    return x\n", EXAMPLES, open_session)
    assert report.all_passed and report.passed == 4 and report.total == 4


def test_wrong_values_and_errors_are_reported(open_session: SessionFactory) -> None:
    completion = "    if x == 2:\n        raise ValueError('two')\n    print('seen', x)\n    return x + 1\n"
    report = run_visible(PROBLEM, completion, EXAMPLES, open_session)
    first, second = report.outcomes[0], report.outcomes[1]
    assert not first.passed and first.got == "2" and "seen 1" in first.stdout
    assert not second.passed and second.got is None and second.error == "ValueError: two"
    assert report.passed == 0 and report.first_failure is first


def test_a_crash_reloads_the_code_for_the_next_example(open_session: SessionFactory) -> None:
    completion = "    if x == 2:\n        import os\n        os._exit(3)\n    return x\n"
    report = run_visible(PROBLEM, completion, EXAMPLES, open_session)
    assert [o.passed for o in report.outcomes] == [True, False, True, True]
    assert report.outcomes[1].status == "crashed" and "process died" in (report.outcomes[1].error or "")


def test_a_hang_stops_the_run_after_one_timeout(open_session: SessionFactory) -> None:
    completion = "    while x == 2:\n        pass\n    return x\n"
    report = run_visible(PROBLEM, completion, EXAMPLES, open_session, timeout=1.0, trace=True)
    assert [o.passed for o in report.outcomes] == [True, False] and report.total == 4
    assert report.outcomes[1].error == "timed out after 1 s"
    assert report.trace is not None and report.trace.stopped is not None  # traced after reloading


def test_code_that_does_not_load(open_session: SessionFactory) -> None:
    report = run_visible(PROBLEM, "    return (\n", EXAMPLES, open_session)
    assert report.program_error is not None and "SyntaxError" in report.program_error
    assert not report.all_passed and report.outcomes == []


def test_a_sample_that_forges_a_non_dict_verdict_fails_cleanly(open_session: SessionFactory) -> None:
    # The sample replaces json.dumps in the session, so the verdict the host reads is a JSON list.
    completion = "    return x\n\nimport json\njson.dumps = lambda *args, **kwargs: '[1, 2]'\n"
    report = run_visible(PROBLEM, completion, EXAMPLES, open_session)
    assert len(report.outcomes) == 4 and not report.all_passed
    assert all(not o.passed and o.error == "the example's result could not be read" for o in report.outcomes)


@pytest.mark.parametrize(
    "text",
    ['[1, 2]', '"ok"', '3', 'null', '{"got": "1"}', '{"ok": 1}', '{"ok": true, "got": 1}', '{"ok": true, "error": []}',
     '[' * 100_000, ''],
)
def test_malformed_verdicts_are_none(text: str) -> None:
    assert _read_verdict(repr(text)) is None


def test_a_well_formed_verdict_is_read() -> None:
    assert _read_verdict(repr('{"ok": false, "got": "2"}')) == (False, "2", None)
    assert _read_verdict(repr('{"ok": true}')) == (True, None, None)
    assert _read_verdict(None) is None and _read_verdict("[1]") is None  # not the repr of a string
