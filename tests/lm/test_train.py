"""Train with cross-entropy: a real tiny run learns, resumes exactly, and checkpoints fail clearly."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from lm_helpers import CORPUS, TINY, codeloop, last_json

from codeloop.errors import ConfigError, ModelError
from codeloop.lm.checkpoint import load_checkpoint
from codeloop.lm.corpus import load_corpus
from codeloop.lm.train import TrainConfig, lr_at, train

pytestmark = pytest.mark.slow


def test_a_tiny_model_learns_below_the_unigram_baseline(trained: tuple[Path, dict[str, Any]]) -> None:
    out, result = trained
    assert result["step"] == 300 and result["stopped"] == "done"
    # real learning: held-out text is predicted better than by byte frequencies alone
    assert result["heldout_bpb"] < result["unigram_bpb"] - 1.0, result
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [0, 100, 200, 300]
    # and well below where it started (a BPE model starts near the unigram figure, uniform over its tokens)
    assert log[0]["heldout_bpb"] > log[1]["heldout_bpb"] > log[-1]["heldout_bpb"]
    assert log[0]["heldout_bpb"] - log[-1]["heldout_bpb"] > 1.0
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "config.json").read_text())["model"]["arch"] == "transformer"


def test_eval_reports_bits_per_byte_next_to_the_unigram_baseline(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = trained
    split = load_corpus([Path(CORPUS[0])], heldout_fraction=0.15)
    held_out = [Path(CORPUS[0]) / name for name in split.heldout_names[:3]]
    report = last_json(codeloop("lm", "eval", str(out), "--text", *map(str, held_out), "--json"))
    assert report["files"] == 3
    assert report["bytes"] == sum(len(p.read_bytes()) for p in held_out)
    assert report["bits_per_byte"] < report["unigram_bits_per_byte"]
    assert math.isclose(report["perplexity"], math.exp(report["loss"]), rel_tol=1e-6)
    default = last_json(codeloop("lm", "eval", str(out), "--json"))
    assert (
        default["source"] == "held-out split" and default["bits_per_byte"] < default["unigram_bits_per_byte"]
    )


def test_sample_generates_and_is_reproducible_with_a_seed(trained: tuple[Path, dict[str, Any]]) -> None:
    out, _ = trained
    args = ("lm", "sample", str(out), "--prompt", "import ", "--max-tokens", "30", "--seed", "7", "--json")
    first, second = last_json(codeloop(*args)), last_json(codeloop(*args))
    assert first["text"] and first["text"] == second["text"]
    assert 1 <= first["tokens"] <= 30
    greedy = codeloop(
        "lm", "sample", str(out), "--prompt", "def ", "--temperature", "0", "--max-tokens", "20"
    )
    assert greedy.returncode == 0 and greedy.stdout.startswith("def ")
    fim = last_json(
        codeloop("lm", "sample", str(out), "--prompt", "x = ", "--suffix", "\n", "--seed", "1", "--json")
    )
    assert fim["suffix"] == "\n" and "<|" not in fim["text"]


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    """Stopping at step 25 and resuming gives the uninterrupted run's loss curve."""
    common = dict(
        corpus=tuple(CORPUS),
        heldout_fraction=0.15,
        vocab_size=384,
        block_size=32,
        d_model=32,
        n_layer=2,
        n_head=2,
        batch_size=8,
        lr=3e-3,
        warmup_steps=5,
        steps=50,
        eval_every=10,
        eval_tokens=1024,
        threads=1,
        seed=5,
    )
    whole = train(TrainConfig(out=str(tmp_path / "whole"), **common), progress=None)  # type: ignore[arg-type]
    first = train(TrainConfig(out=str(tmp_path / "parts"), stop_at=25, **common), progress=None)  # type: ignore[arg-type]
    assert first.stopped == "stop-at" and first.step == 25
    rest = train(TrainConfig(out=str(tmp_path / "parts"), resume=True), progress=None)
    assert rest.step == 50 and rest.stopped == "done"
    a = load_checkpoint(tmp_path / "whole")["train_losses"]
    b = load_checkpoint(tmp_path / "parts")["train_losses"]
    assert len(a) == len(b) == 50
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4
    assert [h["heldout_loss"] for h in whole.history] == pytest.approx(
        [h["heldout_loss"] for h in rest.history], abs=1e-4
    )


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not(tmp_path: Path) -> None:
    common = dict(
        corpus=tuple(CORPUS),
        heldout_fraction=0.15,
        vocab_size=300,
        block_size=16,
        d_model=16,
        n_layer=1,
        n_head=2,
        batch_size=4,
        steps=8,
        eval_every=8,
        eval_tokens=256,
        threads=1,
    )
    runs = [
        train(TrainConfig(out=str(tmp_path / f"r{i}"), seed=s, **common), progress=None)  # type: ignore[arg-type]
        for i, s in enumerate((1, 1, 2))
    ]
    losses = [load_checkpoint(tmp_path / f"r{i}")["train_losses"] for i in range(3)]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]
    assert runs[0].heldout_bpb == runs[1].heldout_bpb


def test_lstm_trains_too(tmp_path: Path) -> None:
    result = last_json(
        codeloop(
            "lm",
            "train",
            "--out",
            str(tmp_path / "lstm"),
            *TINY,
            "--arch",
            "lstm",
            "--steps",
            "40",
            "--eval-every",
            "40",
            "--json",
        )
    )
    assert result["stopped"] == "done" and result["heldout_bpb"] < result["unigram_bpb"]


def test_a_time_budget_stops_the_run(tmp_path: Path) -> None:
    result = last_json(
        codeloop(
            "lm",
            "train",
            "--out",
            str(tmp_path / "t"),
            *TINY,
            "--time-budget",
            "3",
            "--eval-every",
            "1000",
            "--json",
        )
    )
    assert result["stopped"] in ("time budget", "done")
    assert result["elapsed"] < 30 and result["step"] > 0


def test_checkpoint_errors_are_clear(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = trained
    good = (out / "checkpoint.pt").read_bytes()
    cases: dict[str, bytes] = {
        "truncated": good[: len(good) // 2],
        "garbage": b"\x00not a checkpoint at all" * 10,
    }
    other = tmp_path / "other"
    other.mkdir()
    data = load_checkpoint(out)
    data["format_version"] = 99
    data["codeloop_version"] = "9.9.9"
    torch.save(data, other / "checkpoint.pt")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    torch.save({"weights": torch.zeros(3)}, foreign / "checkpoint.pt")
    for name, content in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.pt").write_bytes(content)
        with pytest.raises(ModelError, match="not a readable codeloop lm checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(ModelError, match=r"format version 99 \(written by codeloop 9.9.9\)"):
        load_checkpoint(other)
    with pytest.raises(ModelError, match="not a codeloop lm checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(ModelError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
    # and through the CLI: one line on stderr, no traceback
    for target in (tmp_path / "truncated", other, tmp_path / "missing"):
        done = codeloop("lm", "eval", str(target), "--json")
        assert done.returncode == 1
        assert done.stderr.startswith("codeloop: error:") and "Traceback" not in done.stderr


def test_user_mistakes_are_clear_errors(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = trained
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        train(TrainConfig(out=str(out), corpus=tuple(CORPUS), steps=1), progress=None)
    with pytest.raises(ConfigError, match="corpus path not found"):
        train(TrainConfig(out=str(tmp_path / "x"), corpus=(str(tmp_path / "nope"),), steps=1), progress=None)
    with pytest.raises(ModelError, match="no checkpoint"):
        train(TrainConfig(out=str(tmp_path / "y"), resume=True), progress=None)
    done = codeloop("lm", "train", "--out", str(tmp_path / "z"), "--steps", "0")
    assert done.returncode == 1 and "--steps must be positive" in done.stderr
    done = codeloop("lm", "eval", str(out), "--text", str(tmp_path / "nope.py"))
    assert done.returncode == 1 and "no such file" in done.stderr
    assert codeloop("lm").returncode == 2


def test_learning_rate_warms_up_then_decays() -> None:
    lrs = [lr_at(s, base=1.0, warmup=10, total=100, min_ratio=0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
