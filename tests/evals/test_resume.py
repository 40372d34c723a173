"""The settings check shared by resumable samples files (evals) and batch results files (scale)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codeloop.evals.errors import EvalInputError
from codeloop.evals.resume import check_meta, meta_path

SETTINGS = {"model": "m", "limits": {"max_steps": 6, "max_seconds": 300.0}, "stop": ("```",)}


def test_a_new_file_records_its_settings_and_the_same_settings_continue_it(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out.jsonl"
    check_meta(out, SETTINGS, kind="batch")
    assert meta_path(out) == tmp_path / "deep" / "out.jsonl.meta.json"
    assert json.loads(meta_path(out).read_text()) == {**SETTINGS, "stop": ["```"]}
    out.write_text('{"id": "1"}\n')
    before = meta_path(out).read_bytes()
    check_meta(out, SETTINGS, kind="batch")  # a tuple read back as a list is the same setting
    check_meta(out, dict(reversed(SETTINGS.items())), kind="batch")  # order does not matter
    assert meta_path(out).read_bytes() == before
    assert out.read_text() == '{"id": "1"}\n'


def test_other_settings_are_refused_naming_each_difference(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    check_meta(out, {**SETTINGS, "first_attempts": "plain.jsonl"}, kind="batch")
    other = {**SETTINGS, "model": "n", "limits": {"max_steps": 2, "max_seconds": 300.0}, "seed": 1}
    with pytest.raises(EvalInputError) as info:
        check_meta(out, other, kind="batch")
    message = str(info.value)
    assert message.startswith(f"{out} was started with other settings (")
    diffs = re.search(r"\((.*)\)", message)
    assert diffs is not None
    assert diffs.group(1).split("; ") == [
        "model: 'm' then, 'n' now",
        "limits.max_steps: 6 then, 2 now",
        "seed: unset then, 1 now",
        "first_attempts: 'plain.jsonl' then, unset now",  # a setting dropped is a difference too
    ]
    assert message.endswith("run with the same settings to continue it, or use another --out")
    assert json.loads(meta_path(out).read_text())["model"] == "m"  # the record is left as it was


def test_a_file_codeloop_did_not_start_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "theirs.jsonl"
    out.write_text('{"task_id": "HumanEval/0"}\n')
    with pytest.raises(EvalInputError, match=r"has no theirs\.jsonl\.meta\.json: it is not a codeloop generation run"):
        check_meta(out, SETTINGS, kind="generation run")
    assert not meta_path(out).exists()
    assert out.read_text() == '{"task_id": "HumanEval/0"}\n'
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    check_meta(empty, SETTINGS, kind="batch")  # an empty file holds no run: it is started here
    assert meta_path(empty).exists()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_an_unreadable_record_is_a_clear_error(tmp_path: Path, text: str) -> None:
    out = tmp_path / "out.jsonl"
    meta_path(out).write_text(text)
    with pytest.raises(EvalInputError, match=r"use another --out, or remove it and .*out\.jsonl to start afresh"):
        check_meta(out, SETTINGS, kind="batch")
    assert meta_path(out).read_text() == text
