"""codeloop debug's engine: the monitored run in the real sandbox, the evidence, and the fix (fake model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixdebug_helpers import FakeModel, fenced, make_project, state

from codeloop.workflows.debug import debug, format_debug
from codeloop.workflows.snapshot import InputError

pytestmark = pytest.mark.slow

AVG = '''import sys


def mean(values):
    total = 0
    for v in values:
        total += v
    return total / len(values)


def main(argv):
    groups = {"a": [1, 2, 3], argv[0]: []}
    for name, values in groups.items():
        print(name, mean(values))


main(sys.argv[1:])
'''

MEAN_FIXED = "def mean(values):\n    if not values:\n        return 0.0\n    return sum(values) / len(values)\n"

SPIN = '''def find(items, target):
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid
        else:
            hi = mid - 1
    return -1


print(find([1, 3, 5], 4))
'''


def test_an_exception_gives_the_failing_frame_its_callers_and_a_verified_fix(tmp_path: Path) -> None:
    make_project(tmp_path, {"avg.py": AVG})
    before = state(tmp_path)
    explanation = "`values` is `[]` when `name` is 'empty', so `len(values)` is 0: ZeroDivisionError."
    model = FakeModel(explanation + "\n\n" + fenced(MEAN_FIXED))
    result = debug(tmp_path / "avg.py", ["empty"], model=model, fix=True)
    run = result.run
    assert run.status == "exception" and run.exception_type == "ZeroDivisionError"
    assert [f["function"] for f in run.frames] == ["<module>", "main", "mean"]
    assert run.frames[-1]["locals"] == {"values": "[]", "total": "0"} and run.frames[-1]["line"] == 8
    assert run.frames[1]["locals"]["name"] == "'empty'"  # the caller's values too; the script got its argument
    assert "a 2.0" in run.stdout
    # the model is shown the evidence, and its explanation quotes it
    assert "values = []" in model.prompts[0] and "Failing frame: `mean`" in model.prompts[0]
    assert result.explanation.startswith("`values` is `[]`") and result.quotes_evidence
    assert result.fixed is True and result.rerun is not None and result.rerun.status == "ok"
    assert "+    if not values:" in result.diff
    view = format_debug(result)
    assert "failing frame mean at avg.py:8" in view and "return total / len(values)" in view
    assert "values=[], total=0" in view and "the failure is gone" in view
    assert state(tmp_path) == before  # no --write: bytes and mtimes unchanged


def test_a_hang_shows_where_it_spins_and_what_stays_the_same(tmp_path: Path) -> None:
    make_project(tmp_path, {"spin.py": SPIN})
    result = debug(tmp_path / "spin.py", use_model=False, timeout=1.5)
    run = result.run
    assert run.status == "timeout"
    assert run.spin is not None and run.spin["function"] == "find"
    assert run.spin["stays"]["lo"] == "1" and run.spin["stays"]["hi"] == "2"
    assert 7 in run.spin["lines"] and run.hot_lines[0][2] > 50
    assert "stay the same while it loops: items = [1, 3, 5], target = 4, lo = 1, hi = 2" in result.evidence
    assert result.explanation == "" and result.diff == ""


def test_a_clean_script_needs_no_model_and_write_applies_a_verified_fix(tmp_path: Path) -> None:
    make_project(tmp_path, {"ok.py": "print(sum(range(4)))\n", "avg.py": AVG})
    model = FakeModel()
    clean = debug(tmp_path / "ok.py", model=model)
    assert not clean.run.failed and clean.run.stdout.strip() == "6" and model.requests == []
    result = debug(tmp_path / "avg.py", ["x"], model=FakeModel("Because values is []\n" + fenced(MEAN_FIXED)),
                   fix=True, write=True)
    assert result.fixed and result.written == [{"path": str(tmp_path / "avg.py"), "backup": str(tmp_path / "avg.py.orig")}]
    assert (tmp_path / "avg.py.orig").read_text() == AVG
    assert "if not values:" in (tmp_path / "avg.py").read_text()


def test_a_fix_that_does_not_work_is_not_written(tmp_path: Path) -> None:
    make_project(tmp_path, {"avg.py": AVG})
    before = state(tmp_path)
    still_wrong = fenced("def mean(values):\n    return sum(values) / len(values)\n")
    result = debug(tmp_path / "avg.py", ["x"], model=FakeModel(still_wrong, still_wrong, "no code"), fix=True, write=True)
    assert result.fixed is False and result.written == []
    assert state(tmp_path) == before


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        debug(tmp_path / "missing.py", use_model=False)
    (tmp_path / "broken.py").write_text("x = (1,\n")
    with pytest.raises(InputError, match=r"syntax error in .*broken.py, line 1"):
        debug(tmp_path / "broken.py", use_model=False)


def test_without_fix_the_first_usable_proposal_is_shown_and_not_run(tmp_path: Path) -> None:
    make_project(tmp_path, {"avg.py": AVG})
    events: list[tuple[str, dict[str, object]]] = []
    model = FakeModel("values is [] here\n" + fenced(MEAN_FIXED))
    result = debug(tmp_path / "avg.py", ["x"], model=model, on_event=lambda kind, data: events.append((kind, data)))
    assert len(model.requests) == 1 and model.requests[0].temperature == 0.0 and model.requests[0].seed == 0
    assert result.fixed is None and result.rerun is None and "+    if not values:" in result.diff
    assert result.message == "a fix is proposed (not run; use --fix to check it)"
    assert [k for k, _ in events] == ["run", "run"]  # no rerun without --fix
    assert result.timings["rerun_s"] == 0.0


def test_fix_tries_candidates_until_one_reruns_clean(tmp_path: Path) -> None:
    make_project(tmp_path, {"avg.py": AVG})
    events: list[tuple[str, dict[str, object]]] = []
    still_wrong = fenced("def mean(values):\n    return sum(values) / len(values)\n")
    model = FakeModel("first look\n" + still_wrong, "no code", "second look: values is []\n" + fenced(MEAN_FIXED))
    result = debug(tmp_path / "avg.py", ["x"], model=model, fix=True, samples=3,
                   on_event=lambda kind, data: events.append((kind, data)))
    assert [(r.temperature, r.seed) for r in model.requests] == [(0.0, 0), (0.8, 1), (0.8, 2)]
    assert [(d["candidate"], d["status"]) for k, d in events if k == "rerun"] == [(1, "exception"), (3, "ok")]
    assert result.fixed is True and result.rerun is not None and result.rerun.status == "ok"
    assert "+    if not values:" in result.diff  # the fix that worked, not the first proposal
    assert result.explanation.startswith("second look: values is []")  # the explanation that goes with it
