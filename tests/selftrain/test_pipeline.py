"""``codeloop selftrain`` end to end at a tiny size with the real default model, and its resume rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codeloop.errors import ConfigError
from codeloop.selftrain.lora import LoraConfig
from codeloop.selftrain.pipeline import SelftrainConfig, run_pipeline


def test_a_run_directory_keeps_its_settings(tmp_path: Path) -> None:
    config = SelftrainConfig(tasks=5, function_tasks=3, seed=1)
    report = run_pipeline(tmp_path, config, stop_after="tasks")
    tasks = report["stages"]["tasks"]
    assert tasks["tasks"] == 8
    assert tasks["by_source"]["questions"]["tasks"] == 5 and tasks["by_source"]["functions"]["tasks"] == 3
    first = (tmp_path / "questions" / "tasks.jsonl").read_text()
    functions = (tmp_path / "functions" / "tasks.jsonl").read_text()
    run_pipeline(tmp_path, config, stop_after="tasks")
    assert (tmp_path / "questions" / "tasks.jsonl").read_text() == first
    assert (tmp_path / "functions" / "tasks.jsonl").read_text() == functions
    with pytest.raises(ConfigError, match="other settings"):
        run_pipeline(tmp_path, SelftrainConfig(tasks=6, function_tasks=3, seed=1), stop_after="tasks")
    with pytest.raises(ConfigError, match="other settings"):
        run_pipeline(tmp_path, SelftrainConfig(tasks=5, function_tasks=3, seed=1, sources=("questions",)), stop_after="tasks")
    with pytest.raises(ConfigError, match="unknown stage"):
        run_pipeline(tmp_path, config, stop_after="everything")
    with pytest.raises(ConfigError, match="unknown merge type 'q2_k'"):  # refused up front, not after training
        run_pipeline(tmp_path / "merge", config, merge="q2_k")
    assert not (tmp_path / "merge").exists()


def test_config_checks_and_old_run_directories() -> None:
    with pytest.raises(ConfigError, match="sources must be distinct names"):
        SelftrainConfig(sources=("questions", "humaneval"))
    with pytest.raises(ConfigError, match="sources must be distinct names"):
        SelftrainConfig(sources=())
    with pytest.raises(ConfigError, match="no majority"):
        SelftrainConfig(vote_agree=2, vote_samples=4)
    with pytest.raises(ConfigError, match="1 <= m <= n"):
        SelftrainConfig(vote_agree=5, vote_samples=4)
    config = SelftrainConfig(sources=("generated", "functions"), function_families=("binary-ones",))
    assert SelftrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = SelftrainConfig().to_dict()
    del old["sources"], old["function_tasks"], old["proposals"]  # a config.json from before the sources
    assert SelftrainConfig.from_dict(old).sources == ("questions",)
    del old["teacher"]  # a config.json from before teachers: the model taught itself
    assert SelftrainConfig.from_dict(old).teacher is None
    with pytest.raises(ConfigError, match="another model"):
        SelftrainConfig(teacher="qwen-coder-0.5b")
    taught = SelftrainConfig(teacher="qwen-coder-1.5b")
    assert SelftrainConfig.from_dict(json.loads(json.dumps(taught.to_dict()))) == taught


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--steps", "0"], "steps must be at least 1"),
        (["--sources", "questions,nope"], "sources must be distinct names"),
        (["--vote", "3of4"], "--vote takes M/N"),
        (["--vote", "2/4"], "no majority"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, options: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "codeloop", "selftrain", *options, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--teacher", "no-such-model"], "unknown model 'no-such-model'"),
        (["--teacher", "qwen"], "the teacher 'qwen' is qwen-coder-0.5b itself"),  # an alias of the student
        (["--teacher", "gguf:/nonexistent/teacher.gguf"], "model file not found: /nonexistent/teacher.gguf"),
        (["--teacher", "qwen-coder-0.5b+nope"], "unknown adapter 'nope'"),
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--model", "openai:gpt-4o-mini"], "needs an embedded model"),
        (["--model", "smollm2", "--teacher", "smollm2-135m"], "is smollm2-135m itself"),
    ],
)
def test_bad_model_names_fail_before_any_stage(tmp_path: Path, options: list[str], message: str) -> None:
    """A name that leads nowhere is refused up front: the run directory is never made (the tasks stage
    used to run first, and the name only failed when the model loaded)."""
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "codeloop", "selftrain", *options, "--out", str(run), "--tasks", "3", "--functions", "3"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and "selftrain: tasks" not in proc.stderr
    assert not run.exists()


def test_an_adapter_model_is_not_trained_on(tmp_path: Path) -> None:
    """BASE+NAME as --model would train on the base file (or the merge) and register an adapter for a
    'base' no name can load: refused before any stage."""
    from codeloop.llm.adapters import register_adapter

    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF not really")  # never read: the name is checked, nothing loads
    register_adapter("mine", adapter, "qwen-coder-0.5b")
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"not on qwen-coder-0\.5b\+mine.* name its base"):
        run_pipeline(run, SelftrainConfig(model="qwen+mine", tasks=3, function_tasks=3), stop_after="tasks")
    assert not run.exists()
    # as a teacher it is another model than its base: allowed (the tasks stage needs no model)
    taught = SelftrainConfig(teacher="qwen-coder-0.5b+mine", tasks=3, function_tasks=3)
    assert run_pipeline(run, taught, stop_after="tasks")["stages"]["tasks"]["tasks"] == 6


@pytest.mark.model
@pytest.mark.slow
def test_tiny_pipeline_trains_registers_and_changes_the_model(tmp_path: Path) -> None:
    from codeloop.llm import get_model

    config = SelftrainConfig(
        name="citest", tasks=1, samples_per_task=2, temperature=0.7, seed=0,
        families=("reverse-word",), sources=("questions", "functions"),
        function_tasks=1, function_families=("binary-ones",),
        lora=LoraConfig(steps=2, batch=2, lr=2e-3, warmup=1, max_len=768), validation=2,
    )
    report = run_pipeline(tmp_path / "run", config)
    stages = report["stages"]
    assert list(stages) == ["tasks", "sample", "select", "train", "export", "register"]
    assert stages["sample"]["samples"] == 4
    assert stages["sample"]["by_source"]["functions"]["samples"] == 2
    assert stages["select"]["by_source"]["questions"]["kept"] == 1
    assert stages["select"]["by_source"]["functions"]["kept"] == 1
    train = stages["train"]
    assert train["examples_by_source"] == {"functions": 1, "questions": 1}
    assert len(train["loss_curve"]) == 2 and set(train["loss_curve_by_source"]) == {"functions", "questions"}
    assert train["precision"] in ("bf16", "fp32")
    held = train["validation"]  # held-out function tasks, measured before and after each step (2 steps)
    assert held["examples"] == 2 and [p[0] for p in held["curve"]] == [0, 1, 2]
    assert held["before"] == held["curve"][0][1] != held["after"] == held["curve"][-1][1]
    validation = [json.loads(x) for x in (tmp_path / "run" / "validation.jsonl").read_text().splitlines()]
    trained_prompts = {json.loads(x)["prompt"] for x in (tmp_path / "run" / "functions" / "tasks.jsonl").read_text().splitlines()}
    assert len(validation) == 2 and all(v["completion"].endswith("\n```") for v in validation)
    assert not any(v["prompt"].endswith(p) for v in validation for p in trained_prompts)
    assert stages["export"]["tensors"] == 2 * 4 * 24  # q/k/v/o in each of Qwen2.5-0.5B's 24 blocks
    assert stages["register"]["model"] == "qwen-coder-0.5b+citest"
    rows = [json.loads(x) for x in (tmp_path / "run" / "questions" / "train.jsonl").read_text().splitlines()]
    assert rows[0]["prompt"].startswith("<|im_start|>system")  # the agent's own prompt, rendered
    assert "```python" in rows[0]["completion"]
    fn = json.loads((tmp_path / "run" / "functions" / "train.jsonl").read_text().splitlines()[0])
    task = json.loads((tmp_path / "run" / "functions" / "tasks.jsonl").read_text().splitlines()[0])
    # plain HumanEval's prompt: the function's prompt prefilled in the assistant turn; the body to learn after it
    assert fn["prompt"].endswith("<|im_start|>assistant\n```python\n" + task["prompt"])
    assert fn["completion"].startswith("    ") and fn["completion"].endswith("\n```")

    # a second call resumes: every stage is already done, nothing is redone; --merge adds the merge
    again = run_pipeline(tmp_path / "run", config, merge="q8_0")
    assert again["stages"]["train"] == stages["train"]
    assert again["stages"]["merge"]["type"] == "q8_0"
    assert again["stages"]["merge"]["merged_tensors"] == 4 * 24  # every adapted matrix
    merged = get_model("qwen-coder-0.5b+citest", n_ctx=256)
    assert merged.path.name == "merged.gguf" and merged.adapter is None  # type: ignore[attr-defined]
    assert merged.name == "qwen-coder-0.5b+citest:merged"  # what runs, as history and evals record it

    prompt = rows[0]["prompt"]
    base = get_model("qwen-coder-0.5b", n_ctx=2048)
    tuned = get_model("qwen-coder-0.5b+citest:lora", n_ctx=2048)
    assert tuned.runtime is not base.runtime and tuned.name == "qwen-coder-0.5b+citest:lora"
    b = np.array(_last_logits(base, prompt))
    t = np.array(_last_logits(tuned, prompt))
    assert np.linalg.norm(t - b) > 1e-3 * np.linalg.norm(b)


@pytest.mark.model
@pytest.mark.slow
def test_a_teacher_writes_the_programs_and_the_student_prompt_is_kept(tmp_path: Path) -> None:
    """--teacher: the samples come from the teacher model; the training prompts are the student's."""
    from codeloop.llm import get_model

    student = get_model("qwen-coder-0.5b")
    teacher = f"gguf:{student.path}"  # the same weights under another name: a cheap, real second model
    config = SelftrainConfig(
        name="teachtest", tasks=1, samples_per_task=2, temperature=0.7, seed=0,
        families=("reverse-word",), sources=("questions",), teacher=teacher,
    )
    alias = SelftrainConfig(
        name="teachtest", tasks=1, samples_per_task=2, seed=0, families=("reverse-word",), sources=("questions",),
        teacher="qwen",  # an alias of the student: no teacher at all
    )
    with pytest.raises(ConfigError, match="itself"):
        run_pipeline(tmp_path / "alias", alias, stop_after="select")
    report = run_pipeline(tmp_path / "run", config, stop_after="select")
    sample = report["stages"]["sample"]["by_source"]["questions"]
    assert sample["writer"] != student.name and sample["writer"].endswith(student.path.name)
    assert sample["samples"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run" / "questions" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == report["stages"]["select"]["kept"] >= 1  # reverse-word is easy: one verified program
    assert rows[0]["prompt"].startswith("<|im_start|>system")  # rendered with the student's chat template


@pytest.mark.model
@pytest.mark.slow
def test_hard_keeps_only_tasks_the_model_does_not_solve_greedily(tmp_path: Path) -> None:
    """--hard: a probe stage makes one greedy attempt per task with the trained model; select drops
    the tasks it solved. Which tasks the model solves is the model's business: the test checks
    the files agree with each other, and that an easy family is solved and dropped."""
    config = SelftrainConfig(
        name="hardtest", tasks=2, samples_per_task=2, temperature=0.7, seed=0,
        families=("reverse-word",), sources=("questions", "functions"), function_tasks=3, hard=True,
    )
    report = run_pipeline(tmp_path / "run", config, stop_after="select")
    stages = report["stages"]
    assert list(stages) == ["tasks", "sample", "probe", "select"]
    run = tmp_path / "run"
    for source, count in (("questions", 2), ("functions", 3)):
        probe = [json.loads(x) for x in (run / source / "probe.jsonl").read_text().splitlines()]
        samples = [json.loads(x) for x in (run / source / "samples.jsonl").read_text().splitlines()]
        kept = [json.loads(x)["task_id"] for x in (run / source / "train.jsonl").read_text().splitlines()]
        assert len(probe) == count and all(p["index"] == 0 for p in probe)
        solved = {p["task_id"] for p in probe if p["verified"]}
        assert stages["probe"]["by_source"][source]["solved_greedily"] == len(solved)
        assert not solved & set(kept)  # nothing the model solves greedily is trained on
        unsolved_verified = {s["task_id"] for s in samples if s["verified"]} - solved
        assert set(kept) == unsolved_verified
        dropped = len(solved & {s["task_id"] for s in samples if s["verified"]})
        assert stages["select"]["by_source"][source]["dropped_solved_greedily"] == dropped
    # reversing a word is easy: the 0.5B model solves it with its first greedy reply
    assert stages["probe"]["by_source"]["questions"]["solved_greedily"] >= 1
    # resuming redoes nothing: the probe is not repeated
    before = (run / "questions" / "probe.jsonl").read_text()
    again = run_pipeline(run, config, stop_after="select")
    assert again["stages"]["probe"] == stages["probe"]
    assert (run / "questions" / "probe.jsonl").read_text() == before


def _last_logits(model: object, prompt: str) -> list[float]:
    import llama_cpp

    llama = model.runtime.llama  # type: ignore[attr-defined]
    tokens = llama.tokenize(prompt.encode(), add_bos=False, special=True)
    llama.reset()
    llama.eval(tokens)
    ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return list(np.ctypeslib.as_array(ptr, shape=(llama.n_vocab(),)))
