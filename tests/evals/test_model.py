"""The whole pipeline with a real embedded model (SmolLM2-135M, the quick one): generate, repair, check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeloop.evals.generation import GenerationSettings, Mode
from codeloop.evals.jsonl import read_jsonl
from codeloop.evals.run import HumanEvalOptions, run_humaneval
from codeloop.evals.sessions import SessionFactory

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def smol():  # type: ignore[no-untyped-def]
    from codeloop.llm import get_model

    return get_model("smollm2-135m", n_ctx=4096)


@pytest.mark.parametrize("mode", [Mode.PLAIN, Mode.TRACE])
def test_real_model_run(tmp_path: Path, mode: Mode, smol, open_session: SessionFactory) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{mode}.jsonl"
    options = HumanEvalOptions(
        out=out,
        limit=2,
        ks=(1,),
        progress=False,
        generation=GenerationSettings(mode=mode, rounds=1, max_tokens=160),
    )
    report = run_humaneval(options, model=smol, model_name=smol.name, open_session=open_session)
    assert report.problems == 2 and report.samples == 2 and 0 <= report.passed <= 2
    assert report.settings["prompt_style"] == "chatml" and report.settings["mode"] == str(mode)
    rows = list(read_jsonl(Path(str(out) + "_results.jsonl")))
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    assert all(isinstance(r["completion"], str) and isinstance(r["passed"], bool) for r in rows)
    samples = list(read_jsonl(out))
    assert all(s["attempts"] >= 1 and s["tokens"] > 0 for s in samples)
    if mode is Mode.PLAIN:
        assert all(s["attempts"] == 1 and s["visible"] is None for s in samples)
    else:
        assert all(s["attempts"] <= 3 and s["visible"] is not None for s in samples)  # 1 + a repair + a fresh retry
    assert json.loads(Path(str(out) + ".meta.json").read_text())["model"] == "smollm2-135m"


@pytest.fixture(scope="module")
def qwen():  # type: ignore[no-untyped-def]
    from codeloop.llm import get_model

    return get_model(None)  # the default embedded model, the one with fill-in-the-middle tokens


def test_real_model_fills_in_the_middle(tmp_path: Path, qwen, open_session: SessionFactory) -> None:  # type: ignore[no-untyped-def]
    from codeloop.evals.run import EvalOptions, run_eval

    out = tmp_path / "infill.jsonl"
    options = EvalOptions(benchmark="humaneval-infill", out=out, limit=4, ks=(1,), progress=False)
    report = run_eval(options, model=qwen, model_name=qwen.name, open_session=open_session)
    assert report.benchmark == "humaneval-infill-single-line" and report.samples == 4
    samples = list(read_jsonl(out))
    assert all(s["tokens"] > 0 and "<|fim" not in s["raw"] for s in samples)
    # single-line: each middle is one line of code (or empty when the model wrote the suffix again)
    assert all(len(s["completion"].strip().splitlines()) <= 1 for s in samples)
    # the markers reach the model as its FIM tokens: it fills most of these easy holes right
    assert report.passed >= 2, [(s["task_id"], s["raw"][:80]) for s in samples]
