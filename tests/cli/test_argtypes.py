"""The commands' shared argument types: whole numbers and seconds must be positive, said clearly."""

from __future__ import annotations

import argparse

import pytest

from codeloop.cli import analyze_cmd, complete_cmd, run_cmd, serve_cmd


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        (analyze_cmd, ["x.py", "--suggestions", "0"], "expected a positive integer, got '0'"),
        (complete_cmd, ["f.py:1:1", "--lines", "two"], "expected a positive integer, got 'two'"),
        (run_cmd, ["task", "--timeout", "-1"], "expected a positive number of seconds, got '-1'"),
        (serve_cmd, ["--max-sessions", "0"], "expected a positive integer, got '0'"),
    ],
)
def test_non_positive_values_are_refused(
    command: object, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)  # type: ignore[attr-defined]
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert message in capsys.readouterr().err


def test_positive_values_are_read() -> None:
    parser = argparse.ArgumentParser()
    run_cmd.add_arguments(parser)
    args = parser.parse_args(["task", "--max-steps", "3", "--timeout", "2.5"])
    assert args.max_steps == 3 and args.timeout == 2.5
