"""The loop detector that stops a degenerate reply early."""

from __future__ import annotations

from codeloop.llm.repetition import degenerate_tail


def test_repeated_lines_and_patterns_are_loops() -> None:
    assert degenerate_tail("def f():\n    pass\n" + 'print(vowels_count("sky"))  # 2\n' * 8)
    assert degenerate_tail("print(parse_music('o o| " + "o " * 90)
    assert degenerate_tail("x = [" + "1, 2, 3, " * 30)


def test_ordinary_code_is_not() -> None:
    code = "\n".join(f"print({i} * {i})" for i in range(40)) + "\n"
    assert not degenerate_tail(code)
    assert not degenerate_tail("print('a')\n" * 7)  # fewer than eight in a row
    assert not degenerate_tail("x = 1\n" + "    pass\n" * 3 + "# " + "=" * 200)  # separators, not content
    assert not degenerate_tail("")
