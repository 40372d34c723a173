"""Plain, repair and trace generation with a scripted model and the real sandbox.

The model is fake (the loop logic is under test); the examples, the sandbox runs, the traces
and the feedback are real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeloop.errors import CodeloopError
from codeloop.evals.generation import GenerationSettings, Mode, generate_sample
from codeloop.evals.jsonl import read_jsonl
from codeloop.evals.problems import Problem
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.run import HumanEvalOptions, run_humaneval
from codeloop.evals.sessions import SessionFactory

TASK = "HumanEval/0"  # has_close_elements; two doctest examples
WRONG = "    return False\n```"
ALSO_WRONG = "    return len(numbers) > 99\n```"
RIGHT = (
    "    for i, a in enumerate(numbers):\n"
    "        for j, b in enumerate(numbers):\n"
    "            if i != j and abs(a - b) < threshold:\n"
    "                return True\n"
    "    return False\n```"
)


def test_plain_asks_once(problems: dict[str, Problem], scripted) -> None:
    model = scripted([WRONG])
    made = generate_sample(problems[TASK], model, GenerationSettings(mode=Mode.PLAIN))
    assert made.completion == "    return False\n" and made.attempts == 1 and made.visible is None
    assert model.prompts[0].endswith("```python\n" + problems[TASK].prompt)


def test_repair_feeds_back_failures_until_the_examples_pass(
    problems: dict[str, Problem], open_session: SessionFactory, scripted
) -> None:
    problem = problems[TASK]
    model = scripted([WRONG, RIGHT])
    made = generate_sample(problem, model, GenerationSettings(mode=Mode.REPAIR, rounds=3), open_session)
    assert made.attempts == 2 and made.visible == "2/2"
    assert "abs(a - b) < threshold" in made.completion
    feedback = model.prompts[1]
    assert "passes 1 of 2 examples" in feedback
    assert "has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) should return True, but it returned False" in feedback
    assert "return False" in feedback  # the attempt is shown back
    # The hidden tests are never shown: none of their inputs appear in any prompt.
    assert "[1.0, 2.0, 3.9, 4.0, 5.0, 2.2]" in problem.test
    assert all("3.9, 4.0, 5.0, 2.2" not in p and "def check" not in p for p in model.prompts)


def test_repair_keeps_the_best_attempt_and_stops_after_rounds(
    problems: dict[str, Problem], open_session: SessionFactory, scripted
) -> None:
    model = scripted([WRONG, "    return (\n```", ALSO_WRONG])
    made = generate_sample(problems[TASK], model, GenerationSettings(mode=Mode.REPAIR, rounds=2), open_session)
    assert made.attempts == 3 and not model.replies
    assert made.completion == "    return False\n" and made.visible == "1/2"  # earliest of the best
    assert "fails before any example runs" in model.prompts[2] and "SyntaxError" in model.prompts[2]


def test_a_repeated_attempt_is_retried_by_sampling_then_given_up(
    problems: dict[str, Problem], open_session: SessionFactory, scripted
) -> None:
    model = scripted([WRONG, WRONG, RIGHT])
    made = generate_sample(problems[TASK], model, GenerationSettings(mode=Mode.REPAIR, rounds=3), open_session)
    assert made.attempts == 3 and made.visible == "2/2" and not model.replies
    assert [c["temperature"] for c in model.settings] == [0.0, 0.0, 0.8] and model.settings[2]["seed"] is not None
    fresh = model.prompts[2]  # the retry shows what went wrong, but not the code it would copy
    assert "Note: an earlier attempt was wrong. It passes 1 of 2 examples" in fresh
    assert "    return False" not in fresh and fresh.count("<|im_start|>user") == 1
    model = scripted([WRONG, WRONG, WRONG, RIGHT])
    made = generate_sample(problems[TASK], model, GenerationSettings(mode=Mode.REPAIR, rounds=3), open_session)
    assert made.attempts == 3 and made.visible == "1/2" and model.replies == [RIGHT]


def test_trace_feedback_shows_values_line_by_line(
    problems: dict[str, Problem], open_session: SessionFactory, scripted
) -> None:
    problem = problems[TASK]
    buggy = (
        "    closest = None\n"
        "    for i in range(len(numbers) - 1):\n"
        "        gap = abs(numbers[i] - numbers[i + 1])\n"
        "        if gap > threshold:\n"
        "            return True\n"
        "    return False\n```"
    )
    model = scripted([buggy, RIGHT])
    made = generate_sample(problem, model, GenerationSettings(mode=Mode.TRACE, rounds=1), open_session)
    assert made.visible == "2/2"
    feedback = model.prompts[1]
    assert "line by line" in feedback and "Trace of has_close_elements([1.0, 2.0, 3.0], 0.5)" in feedback
    assert "gap = abs(numbers[i] - numbers[i + 1])   # gap=1.0" in feedback
    assert "return True   # returns True" in feedback and "result: True" in feedback


def test_trace_of_a_hang_is_bounded(problems: dict[str, Problem], open_session: SessionFactory, scripted) -> None:
    model = scripted(["    i = 0\n    while True:\n        i += 1\n```", RIGHT])
    settings = GenerationSettings(mode=Mode.TRACE, rounds=1, example_timeout=1.0)
    made = generate_sample(problems[TASK], model, settings, open_session)
    assert made.visible == "2/2"
    feedback = model.prompts[1]
    assert "timed out" in feedback and "steps (an endless loop?)" in feedback and len(feedback) < 8000


def test_chat_style_for_repair(problems: dict[str, Problem], open_session: SessionFactory, scripted) -> None:
    problem = problems[TASK]
    chat_right = "```python\nfrom typing import List\n\ndef has_close_elements(numbers, threshold):\n" + RIGHT.replace("```", "") + "```"
    model = scripted(["```python\ndef has_close_elements(numbers, threshold):\n    return False\n```", chat_right])
    settings = GenerationSettings(mode=Mode.REPAIR, style=PromptStyle.CHAT, rounds=1)
    made = generate_sample(problem, model, settings, open_session)
    assert made.visible == "2/2" and made.completion.startswith("\nfrom typing import List")
    assert model.prompts[1].startswith("[system]") and "[assistant]" in model.prompts[1]


def test_model_run_resumes_and_refuses_other_settings(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory, scripted
) -> None:
    out = tmp_path / "gen.jsonl"
    first = [problems[t].canonical_solution + "```" for t in ("HumanEval/0", "HumanEval/1")]
    options = HumanEvalOptions(out=out, limit=2, ks=(1,), progress=False, prompt_style="chatml")
    report = run_humaneval(options, model=scripted(first), model_name="fake", open_session=open_session)
    assert (report.problems, report.passed) == (2, 2)
    assert json.loads(Path(str(out) + ".meta.json").read_text())["model"] == "fake"
    # A longer run on the same file asks the model only for the new problem.
    more = HumanEvalOptions(out=out, limit=3, ks=(1,), progress=False, prompt_style="chatml")
    model = scripted(["    return []\n```"])
    report = run_humaneval(more, model=model, model_name="fake", open_session=open_session)
    assert (report.problems, report.samples, report.passed) == (3, 3, 2) and not model.replies
    assert [r["task_id"] for r in read_jsonl(out)] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    other = HumanEvalOptions(out=out, limit=3, progress=False, prompt_style="chatml", generation=GenerationSettings(temperature=0.5))
    with pytest.raises(CodeloopError, match="other settings"):
        run_humaneval(other, model=scripted([]), model_name="fake", open_session=open_session)


def test_generation_stops_where_demo_code_starts(problems: dict[str, Problem], scripted) -> None:
    demo = "\n# Test the function\nprint(has_close_elements([1.0], 0.5))\n" + "print(1)\n" * 200 + "```"
    model = scripted([RIGHT.removesuffix("```") + demo])
    made = generate_sample(problems[TASK], model, GenerationSettings(mode=Mode.PLAIN))
    assert "print" not in made.completion and "abs(a - b) < threshold" in made.completion
    assert made.tokens < 60  # the stream was closed at the first demo line, not read to the end


def test_repair_can_take_its_first_round_from_a_plain_run(
    tmp_path: Path, problems: dict[str, Problem], open_session: SessionFactory, scripted
) -> None:
    plain = tmp_path / "plain.jsonl"
    options = HumanEvalOptions(out=plain, limit=2, ks=(1,), progress=False, prompt_style="chatml")
    right_1 = problems["HumanEval/1"].canonical_solution + "```"
    run_humaneval(options, model=scripted([WRONG, right_1]), model_name="fake", open_session=open_session)
    # Repair asks the model only for the failing problem's repair: the first round comes from the plain run.
    repair = HumanEvalOptions(
        out=tmp_path / "repair.jsonl", limit=2, ks=(1,), progress=False, prompt_style="chatml",
        generation=GenerationSettings(mode=Mode.REPAIR, rounds=2), first_attempts=plain,
    )
    model = scripted([RIGHT])
    report = run_humaneval(repair, model=model, model_name="fake", open_session=open_session)
    assert (report.problems, report.passed) == (2, 2) and not model.replies
    assert "return False" in model.prompts[0]  # the plain attempt was shown back for repair
    rows = read_jsonl(tmp_path / "repair.jsonl")
    assert [r["attempts"] for r in rows] == [1, 0]
    # Only a plain run with the same model and settings can stand in for the first round.
    for wrong in (
        HumanEvalOptions(out=tmp_path / "r2.jsonl", limit=2, progress=False, prompt_style="chatml",
                         generation=GenerationSettings(mode=Mode.REPAIR, max_tokens=99), first_attempts=plain),
        HumanEvalOptions(out=tmp_path / "r3.jsonl", limit=2, progress=False, prompt_style="chatml",
                         generation=GenerationSettings(mode=Mode.REPAIR), first_attempts=tmp_path / "repair.jsonl"),
        HumanEvalOptions(out=tmp_path / "r4.jsonl", limit=2, progress=False, prompt_style="chatml",
                         first_attempts=plain),
    ):
        with pytest.raises(CodeloopError, match="first-attempts"):
            run_humaneval(wrong, model=scripted([]), model_name="fake", open_session=open_session)
    with pytest.raises(CodeloopError, match="first-attempts"):
        run_humaneval(
            HumanEvalOptions(out=tmp_path / "r5.jsonl", limit=2, progress=False, prompt_style="chatml",
                             generation=GenerationSettings(mode=Mode.REPAIR), first_attempts=plain),
            model=scripted([]), model_name="other", open_session=open_session,
        )
