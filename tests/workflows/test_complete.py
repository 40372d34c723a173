"""``codeloop.workflows.complete`` and the shared FIM post-processing in ``codeloop.llm.fim``."""

from __future__ import annotations

from pathlib import Path

import pytest
from analyze_complete_support import ScriptedModel, snapshot

from codeloop.errors import ModelError
from codeloop.llm.fim import (
    QWEN_FIM,
    FimTemplate,
    enough_lines,
    fim_context,
    finish_middle,
    keep_lines,
    split_trailing_space,
    suffix_overlaps,
)
from codeloop.workflows.complete import CompleteError, complete, complete_file, split_at_cursor

# --- post-processing (pure functions) ---


def test_overlap_with_the_suffix_is_trimmed() -> None:
    before, after = "def f(xs):\n    return sorted(xs, key=", ")\n"
    assert suffix_overlaps("lambda x: x[1])", after) == [1]
    assert finish_middle("lambda x: x[1])\n\n", before, after) == "lambda x: x[1]"
    # the model wrote the whole rest of the line: all of it is trimmed
    assert finish_middle("a, b):", "def g(", "):\n    pass\n") == "a, b"


def test_a_needed_closing_bracket_is_kept() -> None:
    # g(f(x) + ")" : trimming the ")" would break the call, so the parser keeps it
    assert finish_middle("f(x)", "y = g(", ")\n") == "f(x)"


def test_extra_closers_are_dropped_when_that_makes_it_parse() -> None:
    assert finish_middle("x[1]))", "y = max(a, key=lambda x: ", ")\n") == "x[1]"


def test_single_line_and_multi_line() -> None:
    assert keep_lines("a + b\nprint(1)\n", 1) == "a + b"
    assert keep_lines("\n    return x\n    y = 2\n", 1) == "\n    return x"
    assert keep_lines("a\nb\nc\n\n", 2) == "a\nb"
    assert keep_lines("a\nb\n\n", None) == "a\nb"
    assert not enough_lines("    ", 1) and not enough_lines("\n\n", 1)
    assert not enough_lines("\n  x = 1", 1) and enough_lines("\n  x = 1\n", 1)
    assert enough_lines("a\nb\n", 2) and not enough_lines("a\nb", 2)


def test_a_multi_line_middle_stops_before_repeating_the_suffix() -> None:
    before = "def f(x):\n    y = x + 1\n"
    after = "    return y\n"
    middle = "    y = y * 2\n    return y\n"
    assert finish_middle(middle, before, after, max_lines=3) == "    y = y * 2\n"


def test_stop_texts_cut_the_middle() -> None:
    assert finish_middle("x + 1<|endoftext|>junk", "y = ", "\n", stops=QWEN_FIM.stops) == "x + 1"


def test_unparsable_files_fall_back_to_balanced_brackets() -> None:
    # the file has an error elsewhere, so no candidate parses: the balanced line wins
    after = ")\n\ndef broken(:\n"
    assert finish_middle("a, b))", "print(", after) == "a, b"


def test_trailing_space_is_moved_out_of_the_prompt() -> None:
    assert split_trailing_space("x = 1\n    return ") == ("x = 1\n    return", " ")
    assert split_trailing_space("x = 1\n    ") == ("x = 1\n    ", "")  # indentation only: kept
    assert split_trailing_space("return") == ("return", "")


def test_context_is_cut_at_line_boundaries_near_the_cursor() -> None:
    before = "".join(f"line{i}\n" for i in range(100)) + "x = "
    after = "".join(f"after{i}\n" for i in range(100))
    b, a = fim_context(before, after, max_before=50, max_after=30)
    assert b.endswith("x = ") and b.startswith("line") and len(b) <= 50
    assert a.startswith("after0\n") and a.endswith("\n") and len(a) <= 30


# --- the cursor ---


def test_cursor_positions() -> None:
    src = "ab\ncd\n"
    assert split_at_cursor(src, 1, 1) == ("", src)
    assert split_at_cursor(src, 2, 2) == ("ab\nc", "d\n")
    assert split_at_cursor(src, 2, 3) == ("ab\ncd", "\n")
    assert split_at_cursor(src, 3, 1) == (src, "")
    for line, col in ((0, 1), (4, 1), (1, 0), (1, 4)):
        with pytest.raises(CompleteError, match="outside"):
            split_at_cursor(src, line, col)


# --- complete() with a scripted model ---


def test_complete_sends_the_fim_prompt_and_post_processes() -> None:
    model = ScriptedModel("x + y)\nprint('more')\n")
    c = complete(model, "def f(x, y):\n    return g()\n", 2, 14)
    assert c.completion == "x + y"
    assert c.raw.startswith("x + y)")
    prompt = model.requests[0].prompt
    assert prompt == "<|fim_prefix|>def f(x, y):\n    return g(<|fim_suffix|>)\n<|fim_middle|>"
    assert set(QWEN_FIM.stops) <= set(model.requests[0].stop)
    assert c.line == 2 and c.col == 14 and c.model == "scripted" and c.total_seconds >= c.model_seconds


def test_generation_stops_once_the_line_is_complete() -> None:
    model = ScriptedModel("a\n" + "b = 2\n" * 200, chunk=2)
    c = complete(model, "x = \n", 1, 5)
    assert c.completion == "a"
    assert model.chunks_sent <= 3  # it did not read the 200 lines that followed


def test_trailing_space_before_the_cursor() -> None:
    model = ScriptedModel(" a + b\n")
    c = complete(model, "def f(a, b):\n    return \n", 2, 12)
    assert model.requests[0].prompt.startswith("<|fim_prefix|>def f(a, b):\n    return<|fim_suffix|>")
    assert c.completion == "a + b"  # the file already has the space


def test_a_model_with_its_own_fim_template() -> None:
    model = ScriptedModel("1\n")
    model.fim_template = FimTemplate("<PRE>", "<SUF>", "<MID>", stops=("<EOT>",))  # type: ignore[attr-defined]
    c = complete(model, "x = \n", 1, 5)
    assert model.requests[0].prompt == "<PRE>x =<SUF>\n<MID>"
    assert "<EOT>" in model.requests[0].stop and c.completion == "1"


def test_lines_option_allows_more_lines() -> None:
    model = ScriptedModel("\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n")
    c = complete(model, "def fib(n):\n", 1, 12, lines=3)
    assert c.completion == "\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)"


def test_model_errors_and_bad_input() -> None:
    with pytest.raises(ModelError):
        complete(ScriptedModel(fail=ModelError("server down")), "x = \n", 1, 5)
    with pytest.raises(CompleteError):
        complete(ScriptedModel("1"), "x = \n", 1, 5, lines=0)
    with pytest.raises(CompleteError, match="no such file"):
        complete_file(ScriptedModel("1"), "/nonexistent/file.py", 1, 1)


def test_complete_file_leaves_the_file_alone(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f(x):\n    return \n")
    before = snapshot(tmp_path)
    c = complete_file(ScriptedModel("x * 2\n"), f, 2, 12)
    assert c.completion == "x * 2" and c.path == str(f)
    assert snapshot(tmp_path) == before


# --- the embedded model ---


@pytest.mark.model
@pytest.mark.slow
def test_completion_on_the_embedded_model(default_ready: Path, tmp_path: Path) -> None:
    from codeloop.llm import get_model

    model = get_model()
    work = tmp_path / "work"  # a folder of its own: tmp_path also holds the user dir and its model
    work.mkdir()
    f = work / "area.py"
    f.write_text('def area(w, h):\n    """The area of a w x h rectangle."""\n    return \n')
    before = snapshot(work)
    c = complete_file(model, f, 3, 12)
    assert c.completion.replace(" ", "") in ("w*h", "h*w"), c  # model output is never run on the host
    assert "\n" not in c.completion and c.prompt_tokens and c.prompt_tokens > 10
    # a cursor inside a call: the closing bracket already in the file is not written twice
    g = work / "env.py"
    g.write_text("import os\n\n\ndef home():\n    return os.environ.get()\n")
    c2 = complete_file(model, g, 5, 27)
    assert not c2.completion.endswith(")") or c2.completion.count("(") >= c2.completion.count(")"), c2
    assert snapshot(work) == {**before, **snapshot(g)}
