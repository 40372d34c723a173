"""Paired comparison of two runs: counts, the exact sign test, and the file formats it reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from codeloop.evals.errors import EvalError
from codeloop.evals.paired import compare, read_scores, sign_test

ROOT = Path(__file__).resolve().parents[2]


def test_sign_test_matches_the_binomial_by_hand() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(0, 5) == pytest.approx(2 / 32)  # all five flips one way
    assert sign_test(5, 0) == sign_test(0, 5)
    assert sign_test(3, 3) == 1.0  # capped: both tails overlap
    # 10 gained, 14 lost: 2 * P(X <= 10), X ~ Bin(24, 1/2)
    assert sign_test(10, 14) == pytest.approx(2 * sum(math.comb(24, k) for k in range(11)) / 2**24)
    assert sign_test(0, 12) < 0.001
    with pytest.raises(ValueError):
        sign_test(-1, 2)


def test_compare_counts_flips_on_common_problems_only() -> None:
    a = {"p1": 1.0, "p2": 0.0, "p3": 1.0, "p4": 0.0, "only-a": 1.0}
    b = {"p1": 1.0, "p2": 1.0, "p3": 0.0, "p4": 0.0, "only-b": 0.0}
    r = compare(a, b)
    assert (r.problems, r.a_score, r.b_score, r.gained, r.lost) == (4, 2.0, 2.0, 1, 1)
    assert (r.only_a, r.only_b) == (1, 1) and r.p_value == 1.0
    several = compare({"p": 0.25}, {"p": 0.75})  # passed fractions of several samples
    assert (several.gained, several.lost) == (1, 0)


def test_reads_eval_results_agent_jsonl_and_agent_logs(tmp_path: Path) -> None:
    results = tmp_path / "plain.jsonl_results.jsonl"
    rows = [{"task_id": "H/0", "passed": True}, {"task_id": "H/1", "passed": False}, {"task_id": "H/1", "passed": True}]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_scores(results) == {"H/0": 1.0, "H/1": 0.5}

    agent = tmp_path / "agent.jsonl"
    agent.write_text(
        json.dumps({"config": "", "task_id": "t1", "ok": True}) + "\n"
        + json.dumps({"config": "--votes 3", "task_id": "t1", "ok": False}) + "\n"
    )
    assert read_scores(agent, "default") == {"t1": 1.0}
    assert read_scores(agent, "--votes 3") == {"t1": 0.0}
    with pytest.raises(EvalError, match="several configurations"):
        read_scores(agent)

    log = tmp_path / "fresh.txt"
    log.write_text(
        "command: x\n\n"
        "ok  f-1      [--model a] answered   steps=1   8.7s  '5' (want 5)\n"
        "BAD f-1      [--model b] answered   steps=1   8.6s  '4' (want 5)\n"
        "BAD f-2      [--model a] error      steps=3   9.0s  None (want 2)\n"
        "ok  f-2      [--model b] answered   steps=1   8.0s  '2' (want 2)\n"
        "\n[--model a]: 1/2 solved (50%)\n"
    )
    assert read_scores(log, "--model a") == {"f-1": 1.0, "f-2": 0.0}
    r = compare(read_scores(log, "--model a"), read_scores(log, "--model b"))
    assert (r.gained, r.lost) == (1, 1)
    with pytest.raises(EvalError, match="no results for configuration"):
        read_scores(log, "--model c")


def test_bad_rows_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x", "passed": "yes"}\n')
    with pytest.raises(EvalError, match=r"bad.jsonl:1: a row needs a boolean"):
        read_scores(bad)
    bad.write_text('{"task_id": "x", "passed": tru\n')
    with pytest.raises(EvalError, match="not JSON"):
        read_scores(bad)
    with pytest.raises(EvalError, match="cannot read"):
        read_scores(tmp_path / "missing.jsonl")


def test_bench_script_prints_the_comparison(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"task_id": f"p{i}", "passed": i < 6}) + "\n" for i in range(10)))
    b.write_text("".join(json.dumps({"task_id": f"p{i}", "passed": i >= 4}) + "\n" for i in range(10)))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "paired.py"), str(a), str(b), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    out = json.loads(proc.stdout)
    assert (out["problems"], out["gained"], out["lost"], out["a_score"], out["b_score"]) == (10, 4, 4, 6.0, 6.0)
    missing = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "paired.py"), str(tmp_path / "nope"), str(b)],
        capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
