"""The shared post-processing of a fill-in-the-middle reply (``codeloop.llm.fim``)."""

from __future__ import annotations

from codeloop.llm.fim import QWEN_FIM, fim_prompt, finish_middle, middle_end

BEFORE = "def f(xs):\n    total = 0\n"
AFTER = "    return total\n"


def test_prompt_is_prefix_suffix_middle() -> None:
    assert fim_prompt(object(), "a", "b") == "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
    assert "<|endoftext|>" in QWEN_FIM.stops


def test_single_line_keeps_the_first_line_of_code() -> None:
    text = "    for x in xs:\n        total += x\n"
    assert finish_middle(text, BEFORE, AFTER, single_line=True) == "    for x in xs:\n"
    assert middle_end(text, AFTER, single_line=True) == len("    for x in xs:\n")


def test_single_line_skips_leading_blank_lines_and_ends_an_unfinished_line() -> None:
    assert finish_middle("\n    total = sum(xs)\n    x", BEFORE, AFTER, single_line=True) == "\n    total = sum(xs)\n"
    assert finish_middle("    total = sum(xs)", BEFORE, AFTER, single_line=True) == "    total = sum(xs)\n"


def test_stops_where_the_model_writes_the_suffix_again() -> None:
    text = "    for x in xs:\n        total += x\n    return total\n\n\nprint(f([1]))\n"
    assert finish_middle(text, BEFORE, AFTER) == "    for x in xs:\n        total += x\n"
    assert middle_end(text, AFTER) == len("    for x in xs:\n        total += x\n")


def test_a_line_equal_to_the_suffix_but_indented_otherwise_is_kept() -> None:
    text = "    if xs:\n        return total\n"
    assert finish_middle(text, BEFORE, AFTER) == text


def test_middle_end_waits_for_a_complete_line() -> None:
    assert middle_end("    for x in xs:\n        tot", AFTER, single_line=False) is None
    assert middle_end("    return tot", AFTER, single_line=True) is None


def test_trims_an_overlap_with_the_suffix_within_a_line() -> None:
    assert finish_middle("x + 1)", "print(f(", ")\n") == "x + 1"
    # whitespace alone is not an overlap worth trimming
    assert finish_middle("x = 1\n", "", "\nreturn x\n") == "x = 1\n"


def test_ends_the_line_at_a_line_start_cursor() -> None:
    assert finish_middle("    total = sum(xs)", BEFORE, AFTER) == "    total = sum(xs)\n"
    # in the middle of a line, nothing is added
    assert finish_middle("1, 2", "xs = [", "]\n") == "1, 2"
    # an empty middle stays empty
    assert finish_middle("", BEFORE, AFTER) == ""


def test_trims_whole_lines_of_the_suffix_at_the_end() -> None:
    after = "    total += 1\n    return total\n"
    assert finish_middle("    total = 0\n    total += 1\n    return total\n", "def f():\n", after) == "    total = 0\n"
