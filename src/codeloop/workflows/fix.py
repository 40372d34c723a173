"""``codeloop fix``: repair a project until its tests pass, working on a copy in the sandbox.

>>> from codeloop.workflows.fix import fix
>>> result = fix(["src/mylib/search.py"], test="python -m pytest -q tests")
>>> result.fixed, print(result.diff)

The loop (generate -> review -> run -> observe -> judge):

1. run the test command on a copy of the project in the sandbox (pytest's own reports, read by
   :mod:`codeloop.workflows.fix_plugin`); a hanging test is interrupted where it spins;
2. localise: the function at fault is the innermost traceback frame in a target file, else the
   function the failing test calls; a bounded line trace of that test through the file
   (:mod:`codeloop.sandbox.tracing`) shows the lines run and the values;
3. ask the model for the corrected function (greedy first; when that does not pass, sample more
   candidates: execution-guided, the one passing most tests wins);
4. review each candidate (:func:`codeloop.workflows.patch.review_change`: test files are never
   edited, assertions never removed, no test gaming), apply it to the copy, rerun the tests;
5. keep a candidate only when it does better than what it replaces; iterate (``rounds``).

The user's files are read once and never written, unless ``write=True`` and the tests pass:
then atomically with a backup (:mod:`codeloop.workflows.safewrite`).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.llm.base import Model
from codeloop.sandbox import Sandbox
from codeloop.text.replies import find_code_blocks, parse_reply
from codeloop.workflows.fix_prompts import (
    describe_failure,
    fix_messages,
    function_header,
    spec_messages,
    test_source,
)
from codeloop.workflows.fix_sandbox import ProjectSandbox, TestOutcome, TestRun, split_command
from codeloop.workflows.patch import (
    find_function,
    function_at_line,
    functions_in,
    replace_function,
    review_change,
    unified_diff,
)
from codeloop.workflows.safewrite import write_changes
from codeloop.workflows.snapshot import InputError, is_test_path, resolve_project, take_snapshot

__all__ = ["DEFAULT_TEST_COMMAND", "FixResult", "FixRound", "ModelSource", "fix", "resolve_model", "suspects"]

DEFAULT_TEST_COMMAND = "python -m pytest -q"

Event = Callable[[str, dict[str, Any]], None]
#: a model, a function that makes one (called only when a model is needed), or None for the default
ModelSource = Model | Callable[[], Model] | None


def resolve_model(source: ModelSource) -> Model:
    """The model itself: ``source`` when it is one, else what its factory (or ``get_model``) gives."""
    if isinstance(source, Model):
        return source
    if source is None:
        from codeloop.llm import get_model

        return get_model()
    return source()


@dataclass
class FixRound:
    """One round: which function was rewritten, how many candidates, what the best one achieved."""

    number: int
    file: str
    function: str
    candidates: int = 0
    rejected: list[str] = field(default_factory=list)
    accepted: bool = False
    tests: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.number, "file": self.file, "function": self.function, "candidates": self.candidates,
                "rejected": list(self.rejected), "accepted": self.accepted, "tests": dict(self.tests),
                "seconds": round(self.seconds, 3)}


@dataclass
class FixResult:
    """What ``fix`` did. ``fixed``: the tests pass with ``diff`` applied (to the copy, or written)."""

    fixed: bool
    diff: str
    rounds: int
    tests_before: dict[str, Any]
    tests_after: dict[str, Any]
    timings: dict[str, float]
    root: str = ""
    files: list[str] = field(default_factory=list)
    written: list[dict[str, str]] = field(default_factory=list)
    history: list[FixRound] = field(default_factory=list)
    message: str = ""
    new_texts: dict[str, str] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fixed": self.fixed,
            "diff": self.diff,
            "rounds": self.rounds,
            "tests_before": dict(self.tests_before),
            "tests_after": dict(self.tests_after),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "root": self.root,
            "files": list(self.files),
            "written": list(self.written),
            "history": [r.to_dict() for r in self.history],
            "message": self.message,
        }


def _called_names(test_text: str, function: str) -> list[str]:
    src = test_source(test_text, function, limit=20_000)
    if not src:
        return []
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name and name not in names:
                names.append(name)
    return names


def suspects(test: TestOutcome, texts: dict[str, str], all_files: dict[str, str], traced: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Where the fault probably is, most likely first: (target file, function name) pairs.

    Target frames of the traceback (innermost first), then functions the test calls, then functions
    the trace saw called, then every other function of the targets.
    """
    out: list[tuple[str, str]] = []

    def add(file: str, name: str) -> None:
        if (file, name) not in out:
            out.append((file, name))

    for frame in reversed(test.frames):
        if frame.file in texts:
            span = function_at_line(texts[frame.file], frame.line)
            if span is not None:
                add(frame.file, span.name)
    defined = {file: functions_in(text) for file, text in texts.items()}
    for name in [*_called_names(all_files.get(test.file, ""), test.function), *traced]:
        for file, spans in defined.items():
            for span in spans:
                if span.name == name or span.name.endswith("." + name) or span.name.split(".")[0] == name:
                    add(file, span.name)
    for file, spans in defined.items():
        for span in spans:
            add(file, span.name)
    return out


def _candidate_code(reply: str) -> list[str]:
    codes = [b.code for b in find_code_blocks(reply) if b.is_python and b.code.strip()]
    if not codes:
        parsed = parse_reply(reply)
        if parsed.code:
            codes = [parsed.code]
    return codes


class _Loop:
    def __init__(self, model: ModelSource, argv: list[str], *, samples: int, test_timeout: float, timeout: float,
                 temperature: float, max_tokens: int, on_event: Event | None) -> None:
        self.model = model
        self.argv = argv
        self.samples = max(1, samples)
        self.test_timeout = test_timeout
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.on_event = on_event
        self.timings = {"model_s": 0.0, "tests_s": 0.0, "trace_s": 0.0}

    def event(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    def get_model(self) -> Model:
        if not isinstance(self.model, Model):
            self.event("model", status="loading")
            self.model = resolve_model(self.model)
        return self.model

    def run_tests(self, box: ProjectSandbox, trace: tuple[str, str] | None = None) -> TestRun:
        start = time.monotonic()
        run = box.run_tests(self.argv, test_timeout=self.test_timeout, timeout=self.timeout, trace=trace)
        self.timings["trace_s" if trace else "tests_s"] += time.monotonic() - start
        return run

    def ask(self, messages: list[Any], repeat: int, round_no: int, k: int) -> str:
        """The ``repeat``-th reply to ``messages`` this round: greedy first, then sampled."""
        model = self.get_model()
        start = time.monotonic()
        temperature = 0.0 if repeat == 0 else self.temperature
        reply = model.complete(messages, max_tokens=self.max_tokens, temperature=temperature,
                               seed=1000 * round_no + k)
        self.timings["model_s"] += time.monotonic() - start
        return reply.text


def fix(
    paths: Sequence[str | Path],
    *,
    test: str | Sequence[str] = DEFAULT_TEST_COMMAND,
    model: ModelSource = None,
    rounds: int = 4,
    samples: int = 3,
    write: bool = False,
    root: str | Path | None = None,
    test_timeout: float = 5.0,
    timeout: float = 120.0,
    temperature: float = 0.8,
    max_tokens: int = 700,
    sandbox: Sandbox | None = None,
    on_event: Event | None = None,
) -> FixResult:
    """Repair the Python files in ``paths`` until ``test`` passes; see the module docstring.

    Raises :class:`~codeloop.workflows.snapshot.InputError` for a user mistake (missing file,
    syntax error, tests that cannot be collected), ``ModelError``/``SandboxError`` when those fail.
    """
    if rounds < 1 or samples < 1:
        raise InputError("--rounds and --samples must be at least 1")
    start = time.monotonic()
    argv = split_command(test)
    project = resolve_project(paths, root)
    bad = [t for t in project.targets if is_test_path(t)]
    if bad:
        raise InputError(f"fix never edits tests; not a source file to repair: {', '.join(bad)}")
    snapshot = take_snapshot(project.root)
    originals: dict[str, str] = {}
    for rel in project.targets:
        if rel not in snapshot.files:
            raise InputError(f"cannot read {rel} (a link, or not a regular file)")
        try:
            text = snapshot.files[rel].decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{rel} is not UTF-8 text") from None
        try:
            ast.parse(text, filename=rel)
        except SyntaxError as e:
            raise InputError(f"syntax error in {rel}, line {e.lineno}: {e.msg}") from None
        originals[rel] = text
    all_texts = {rel: data.decode("utf-8", "replace") for rel, data in snapshot.files.items() if rel.endswith(".py")}
    loop = _Loop(model, argv, samples=samples, test_timeout=test_timeout, timeout=timeout,
                 temperature=temperature, max_tokens=max_tokens, on_event=on_event)
    current = dict(originals)
    history: list[FixRound] = []
    with ProjectSandbox(snapshot, project.targets, sandbox=sandbox) as box:
        loop.event("tests", status="running", what="before")
        before = loop.run_tests(box)
        _check_collectable(before, project.targets)
        loop.event("tests", status="done", what="before", counts=before.counts())
        best_run = before
        stall = 0
        previous: str | None = None
        for number in range(1, rounds + 1):
            if best_run.ok:
                break
            record = _round(loop, box, number, current, all_texts, best_run, stall, previous)
            history.append(record.round)
            if record.run is not None and record.run.score() > best_run.score():
                best_run = record.run
                current[record.round.file] = record.text
                all_texts[record.round.file] = record.text
                stall = 0
                previous = None
            else:
                stall += 1
                previous = record.feedback
            loop.event("round", **record.round.to_dict())
    diff = unified_diff(originals, current)
    changed = [rel for rel in originals if originals[rel] != current[rel]]
    result = FixResult(
        fixed=best_run.ok,
        diff=diff,
        rounds=len(history),
        tests_before=before.counts(),
        tests_after=best_run.counts(),
        timings={},
        root=str(project.root),
        files=changed,
        history=history,
        new_texts={rel: current[rel] for rel in changed},
    )
    if before.ok:
        result.message = "the tests already pass; nothing to fix"
    elif result.fixed:
        result.message = f"fixed in {result.rounds} round(s): the tests pass with this diff"
    else:
        result.message = f"not fixed after {result.rounds} round(s)" + (": the best change is shown" if diff else "")
    if write and changed:
        if result.fixed:
            written = write_changes({project.root / rel: (snapshot.files[rel], current[rel]) for rel in changed})
            result.written = [{"path": str(w.path), "backup": str(w.backup)} for w in written]
        else:
            result.message += "; nothing written (the tests still fail)"
    loop.timings["total_s"] = time.monotonic() - start
    result.timings = dict(loop.timings)
    return result


def _check_collectable(run: TestRun, targets: list[str]) -> None:
    """Refuse to start when the tests cannot run at all (rather than 'fixing' the wrong thing)."""
    if run.structured:
        named = [re.compile(r"(?<![\w.])" + re.escape(t) + r"(?=[:\"',\s])") for t in targets]
        if run.collect_errors and not any(p.search(err) for p in named for err in run.collect_errors):
            raise InputError("the tests cannot be collected:\n" + "\n".join(e[-1200:] for e in run.collect_errors[:3]))
        if run.collected == 0 and not run.collect_errors:
            raise InputError("the test command collected no tests" + (f":\n{run.output[-800:]}" if run.output else ""))
        return
    if run.exit_code == 127 or (run.exit_code is not None and run.exit_code != 0 and not run.output.strip()):
        raise InputError(f"the test command could not run: {run.output[-800:] or f'exit status {run.exit_code}'}")
    if run.exit_code in (4, 5) and "pytest" in run.output.lower():
        raise InputError(f"the tests cannot be collected:\n{run.output[-1200:]}")


@dataclass
class _RoundRecord:
    round: FixRound
    text: str = ""
    run: TestRun | None = None
    feedback: str | None = None


def _round(loop: _Loop, box: ProjectSandbox, number: int, current: dict[str, str], all_texts: dict[str, str],
           last: TestRun, stall: int, previous: str | None) -> _RoundRecord:
    started = time.monotonic()
    failures = last.failures
    if not failures:  # no structured report: the command failed without naming a test
        focus = TestOutcome(nodeid="", outcome="failed", file="", line=0, function="", message=last.output[-1500:])
    else:
        focus = next((t for t in failures if any(f.target for f in t.frames)), failures[0])
    ranked = suspects(focus, current, all_texts)
    if not ranked:
        raise InputError("the files to fix define no functions")
    file, function = ranked[min(stall, len(ranked) - 1)]
    trace = None
    if focus.nodeid and last.structured:
        traced = loop.run_tests(box, trace=(focus.nodeid, file))
        trace = traced.trace
        if trace is not None and stall == 0:
            # the trace names the functions actually run: prefer the one the test reached first
            called = [e.function for e in trace.head if e.call_args is not None]
            reranked = suspects(focus, current, all_texts, called)
            if not any(f.target for f in focus.frames) and reranked:
                file, function = reranked[0]
    span = find_function(current[file], function)
    assert span is not None
    related = [t for t in failures if (file, function) in suspects(t, current, all_texts)[:3]] or ([focus] if failures else [])
    tests = [(t, test_source(all_texts.get(t.file, ""), t.function)) for t in related[:2]]
    context = _module_context(current[file], span.start)
    if trace is not None and focus.nodeid:
        trace = dataclasses.replace(trace, call=focus.nodeid)
    fix_prompt = fix_messages(function=function, function_source=span.source(current[file]), module_context=context,
                              tests=tests, trace=trace, trace_source=current[file], previous=previous)
    header = function_header(span.source(current[file]))
    # Two kinds of request, alternating: fix the code shown with the evidence, and write the function
    # afresh from its header and tests. Each kind is asked greedily first, then sampled.
    prompts = [fix_prompt]
    if header and any(src for _t, src in tests):
        prompts.append(spec_messages(function=function, header=header, module_context=context, tests=tests))
    record = FixRound(number=number, file=file, function=function)
    loop.event("round_start", round=number, file=file, function=function)
    seen: set[str] = set()
    best: tuple[tuple[int, int, int], str, TestRun] | None = None
    for k in range(loop.samples):
        reply = loop.ask(prompts[k % len(prompts)], k // len(prompts), number, k)
        new_text = None
        for code in _candidate_code(reply):
            new_text = replace_function(current[file], function, code)
            if new_text is not None:
                break
        if new_text is None:
            record.rejected.append(f"candidate {k + 1}: no usable definition of {function}")
            continue
        if new_text == current[file] or new_text in seen:
            continue
        seen.add(new_text)
        reasons = review_change({file: current[file]}, {file: new_text})
        if reasons:
            record.rejected.append(f"candidate {k + 1}: " + "; ".join(reasons))
            continue
        record.candidates += 1
        box.write({file: new_text})
        run = loop.run_tests(box)
        loop.event("candidate", round=number, candidate=k + 1, counts=run.counts())
        if best is None or run.score() > best[0]:
            best = (run.score(), new_text, run)
        if run.ok:
            break
    result = _RoundRecord(round=record)
    if best is not None and best[0] > last.score():
        record.accepted = True
        result.text, result.run = best[1], best[2]
        box.write({file: best[1]})
        record.tests = best[2].counts()
    else:
        box.write({file: current[file]})
        record.tests = last.counts()
        if best is not None:
            tried = find_function(best[1], function)
            still = best[2].failures
            result.feedback = (
                f"```python\n{tried.source(best[1]) if tried else ''}```\n"
                + (f"It still failed: {describe_failure(still[0], 300)}" if still else "It did not make more tests pass.")
            )
    record.seconds = time.monotonic() - started
    return result


def _module_context(text: str, before_line: int, limit: int = 25) -> str:
    """Imports and module-level names above the function: enough for the model to know the names."""
    lines = text.splitlines()[: before_line - 1]
    keep = [ln for ln in lines if ln and not ln.startswith((" ", "\t", "#")) and not ln.startswith(("def ", "async def ", "@", "class "))]
    keep = [ln for ln in keep if not ln.startswith(('"""', "'''"))]
    return "\n".join(keep[:limit])
