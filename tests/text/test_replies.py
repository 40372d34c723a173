"""Parsing model replies: fences of every kind, unterminated blocks, prose, bare code."""

from __future__ import annotations

import pytest

from codeloop.text import cut_after_first_block, find_code_blocks, looks_like_bare_code, parse_reply


@pytest.mark.parametrize("opening", ["```python", "```py", "```", "```Python3", "~~~python", "````python"])
def test_fence_kinds_are_python(opening: str) -> None:
    closing = opening[0] * (4 if opening.startswith("````") else 3)
    parsed = parse_reply(f"Here you go:\n{opening}\nx = 1\nprint(x)\n{closing}\nDone.")
    assert parsed.code == "x = 1\nprint(x)"
    assert parsed.before == "Here you go:\n"
    assert parsed.after.strip() == "Done."


def test_other_languages_are_not_run() -> None:
    parsed = parse_reply("```bash\npip install numpy\n```\nthen\n```python\nimport numpy\n```")
    assert parsed.code == "import numpy"
    assert [b.lang for b in find_code_blocks(parsed.text)] == ["bash", "python"]


def test_unterminated_fence_runs_to_the_end() -> None:
    blocks = find_code_blocks("Sure!\n```python\nfor i in range(3):\n    print(i)\n")
    assert len(blocks) == 1
    assert not blocks[0].closed
    assert blocks[0].code == "for i in range(3):\n    print(i)"


def test_several_blocks_in_order() -> None:
    text = "```python\na = 1\n```\nand\n```py\nb = 2\n```\n"
    assert [b.code for b in find_code_blocks(text)] == ["a = 1", "b = 2"]
    assert parse_reply(text).code == "a = 1"


def test_fence_opening_mid_line_and_closing_at_line_end() -> None:
    parsed = parse_reply("Run this: ```python\nprint(6 * 7)```")
    assert parsed.code == "print(6 * 7)"
    assert parsed.before == "Run this: "


def test_indented_block_is_dedented() -> None:
    parsed = parse_reply("1. Do:\n   ```python\n   x = 2\n   print(x)\n   ```")
    assert parsed.code == "x = 2\nprint(x)"


def test_prose_only_reply_has_no_code() -> None:
    parsed = parse_reply("The answer is 42.")
    assert parsed.code is None
    assert parsed.prose == "The answer is 42."


def test_empty_block_is_not_code() -> None:
    assert parse_reply("```python\n```\nThe answer is 3.").code is None


def test_bare_unfenced_program_is_code() -> None:
    assert (
        parse_reply("import math\nprint(math.factorial(5))").code == "import math\nprint(math.factorial(5))"
    )


@pytest.mark.parametrize(
    "text", ["42", "Paris", "The answer is 42.", "", "x", "2^64 is 18446744073709551616.", "x == 3"]
)
def test_bare_values_and_prose_are_not_code(text: str) -> None:
    assert not looks_like_bare_code(text)


def test_cut_after_first_closed_block_drops_invented_output() -> None:
    text = "```python\nprint(2 + 2)\n```\nOutput:\n```\n4\n```\nThe answer is 4."
    assert cut_after_first_block(text) == "```python\nprint(2 + 2)\n```"


def test_cut_waits_for_the_block_to_close() -> None:
    assert cut_after_first_block("```python\nprint(1)\n``") is None
    assert cut_after_first_block("```python\nprint(1)\n```") is None  # "```python" may still follow
    assert cut_after_first_block("```python\nprint(1)\n```\n") == "```python\nprint(1)\n```"
    assert cut_after_first_block("Let me think.") is None


def test_cut_skips_non_python_blocks() -> None:
    text = "```text\nnotes\n```\n```python\nprint(1)\n```\nmore"
    assert cut_after_first_block(text) == "```text\nnotes\n```\n```python\nprint(1)\n```"


def test_a_fence_inside_a_string_does_not_close_the_block() -> None:
    text = "```python\nmsg = 'a\\n```python\\nprint(1)\\n```\\nb'\nprint(msg)\n```"
    assert parse_reply(text).code == "msg = 'a\\n```python\\nprint(1)\\n```\\nb'\nprint(msg)"
