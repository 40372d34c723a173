"""The fix loop with a scripted fake model (loop logic) on the real sandbox and real pytest runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixdebug_helpers import (
    ADD,
    SEARCH_FIXED,
    FakeModel,
    fenced,
    make_project,
    new_calc_project,
    new_search_project,
    state,
)

from codeloop.errors import ModelError
from codeloop.workflows.fix import fix
from codeloop.workflows.snapshot import InputError

pytestmark = pytest.mark.slow


@pytest.fixture
def search_project(tmp_path: Path) -> Path:
    return new_search_project(tmp_path)


@pytest.fixture
def calc_project(tmp_path: Path) -> Path:
    return new_calc_project(tmp_path)


def test_a_hang_is_localised_and_fixed_without_touching_the_users_files(search_project: Path) -> None:
    before = state(search_project)
    model = FakeModel(fenced(SEARCH_FIXED))
    result = fix([search_project], model=model, test_timeout=2.0)
    assert result.fixed and result.rounds == 1
    assert result.tests_before["passed"] == 1 and result.tests_before["failed"] == 1
    assert result.tests_after == {**result.tests_after, "passed": 2, "failed": 0, "ok": True}
    assert "-            lo = mid\n+            lo = mid + 1\n" in result.diff
    assert result.diff.startswith("--- a/search.py\n+++ b/search.py\n")
    # the hang is an observation: where it spun, with the values there, and a bounded trace
    prompt = model.prompts[0]
    assert "never finished" in prompt and "inside `find`" in prompt
    assert "lo = 1" in prompt and "hi = 2" in prompt
    assert "def test_missing" in prompt and "Trace of" in prompt
    assert state(search_project) == before  # bytes and mtimes: nothing written without write=True
    assert set(result.timings) >= {"total_s", "model_s", "tests_s"}


def test_execution_guided_sampling_keeps_the_candidate_that_passes(calc_project: Path) -> None:
    wrong = fenced("def add(a, b):\n    return a * b\n")  # passes test_zero only
    right = fenced("def add(a, b):\n    return a + b\n")
    model = FakeModel(wrong, right)
    result = fix([calc_project], model=model, samples=3)
    assert result.fixed and result.rounds == 1
    assert [r.temperature for r in model.requests] == [0.0, 0.0]  # each kind of request greedy first
    assert "This function has a bug" in model.prompts[0]  # fix the code shown, with the evidence
    assert "Write the body of this function" in model.prompts[1] and "return a - b" not in model.prompts[1]
    assert "+    return a + b" in result.diff
    assert result.history[0].candidates == 2


def test_patches_that_game_the_tests_are_rejected(calc_project: Path) -> None:
    cheat = fenced("import pytest\n\ndef add(a, b):\n    pytest.skip('later')\n")
    exits = fenced("import os\n\ndef add(a, b):\n    os._exit(0)\n")
    right = fenced("def add(a, b):\n    return a + b\n")
    model = FakeModel(cheat, exits, right)
    result = fix([calc_project], model=model, samples=3)
    assert result.fixed
    rejected = result.history[0].rejected
    assert len(rejected) == 2 and "uses pytest" in rejected[0] and "exits the process" in rejected[1]


def test_no_improvement_goes_to_the_next_suspect_and_reports_not_fixed(calc_project: Path) -> None:
    model = FakeModel(*[fenced("def add(a, b):\n    return a - b + 0\n")] * 2, *["no code here"] * 2)
    result = fix([calc_project], model=model, rounds=2, samples=2)
    assert not result.fixed and result.rounds == 2
    assert result.history[0].function == "add" and not result.history[0].accepted
    assert result.tests_after["passed"] == result.tests_before["passed"]
    assert any("It still failed" in p for p in model.prompts[2:]) or result.history[1].function != "add"
    assert (calc_project / "calc.py").read_text() == ADD


def test_write_applies_the_fix_atomically_with_a_backup(calc_project: Path) -> None:
    result = fix([calc_project / "calc.py"], model=FakeModel(fenced("def add(a, b):\n    return a + b\n")), write=True)
    assert result.fixed
    assert (calc_project / "calc.py").read_text() == ADD.replace("a - b", "a + b")
    assert (calc_project / "calc.py.orig").read_text() == ADD
    assert result.written == [{"path": str(calc_project / "calc.py"), "backup": str(calc_project / "calc.py.orig")}]


def test_passing_tests_need_no_model(calc_project: Path) -> None:
    (calc_project / "calc.py").write_text(ADD.replace("a - b", "a + b"))
    model = FakeModel()
    result = fix([calc_project], model=model)
    assert result.fixed and result.rounds == 0 and result.diff == "" and model.requests == []


def test_user_mistakes_are_clear_errors(tmp_path: Path, calc_project: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        fix([tmp_path / "nope.py"], model=FakeModel())
    bad = make_project(tmp_path / "bad", {"m.py": "def f(:\n    pass\n", "test_m.py": "def test_x():\n    pass\n"})
    with pytest.raises(InputError, match=r"syntax error in m.py, line 1"):
        fix([bad], model=FakeModel())
    broken = make_project(tmp_path / "broken", {"m.py": "def f():\n    return 1\n",
                                                "test_m.py": "import not_a_module_anywhere\n\ndef test_x():\n    pass\n"})
    with pytest.raises(InputError, match="cannot be collected"):
        fix([broken], model=FakeModel())
    empty = make_project(tmp_path / "empty", {"m.py": "def f():\n    return 1\n"})
    with pytest.raises(InputError, match="collected no tests"):
        fix([empty], model=FakeModel())
    with pytest.raises(InputError, match="never edits tests"):
        fix([calc_project / "test_calc.py"], model=FakeModel())


def test_a_model_failure_is_raised_not_hidden(calc_project: Path) -> None:
    with pytest.raises(ModelError, match="server down"):
        fix([calc_project], model=FakeModel(ModelError("server down")))


def test_events_seeds_and_the_lazy_model_follow_the_rounds(calc_project: Path) -> None:
    """The progress a caller sees, in order, and the sampling each candidate asks for."""
    wrong = fenced("def add(a, b):\n    return a * b\n")
    model = FakeModel(wrong, wrong, fenced("def add(a, b):\n    return b + a\n"))
    made: list[FakeModel] = []
    events: list[tuple[str, dict[str, object]]] = []

    def factory() -> FakeModel:
        made.append(model)
        return model

    result = fix([calc_project], model=factory, samples=3, on_event=lambda kind, data: events.append((kind, data)))
    assert result.fixed and result.rounds == 1 and made == [model]
    assert [k for k, _ in events] == ["tests", "tests", "round_start", "model", "candidate", "candidate", "round"]
    assert events[2][1] == {"round": 1, "file": "calc.py", "function": "add"}
    # the repeat of the first candidate is not run again: candidates 1 and 3 ran
    assert [d["candidate"] for k, d in events if k == "candidate"] == [1, 3]
    assert events[-1][1]["candidates"] == 2 and events[-1][1]["accepted"] is True
    # fix-the-code and write-the-function alternate, each greedy first; seeds by round and candidate
    assert [(r.temperature, r.seed) for r in model.requests] == [(0.0, 1000), (0.0, 1001), (0.8, 1002)]


def test_passing_on_the_first_round_leaves_the_other_rounds_unasked(calc_project: Path) -> None:
    model = FakeModel(fenced("def add(a, b):\n    return a + b\n"))
    result = fix([calc_project], model=model, rounds=4, samples=3)
    assert result.fixed and result.rounds == 1 and len(model.requests) == 1
    assert result.to_dict()["history"][0]["candidates"] == 1
