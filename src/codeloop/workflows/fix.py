"""``codeloop fix``: repair a project until its tests pass, working on a copy in the sandbox.

>>> from codeloop.workflows.fix import fix
>>> result = fix(["src/mylib/search.py"], test="python -m pytest -q tests")
>>> result.fixed, print(result.diff)

The tests run first on a copy of the project in the sandbox (pytest's own reports, read by
:mod:`codeloop.workflows.fix_plugin`; a hanging test is interrupted where it spins). While they
fail, :class:`FixWorkflow` runs on the engine's loop (:func:`codeloop.engine.drive`), a round at a
time:

1. localise: the function at fault is the innermost traceback frame in a target file, else the
   function the failing test calls; a bounded line trace of that test through the file
   (:mod:`codeloop.sandbox.tracing`) shows the lines run and the values;
2. generate: ask the model for the corrected function (greedy first; when that does not pass,
   sample more candidates: execution-guided, the one passing most tests wins);
3. review each candidate (:func:`codeloop.workflows.patch.review_change`: test files are never
   edited, assertions never removed, no test gaming; no repeats);
4. run: apply it to the copy, rerun the tests;
5. observe and judge: keep a candidate only when it does better than what it replaces, show the
   next round what the best failed attempt did; done when the tests pass or ``rounds`` are used.

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

from codeloop.engine.loop import Review, Verdict, drive
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

__all__ = [
    "DEFAULT_TEST_COMMAND", "Candidate", "FixResult", "FixRound", "FixWorkflow", "ModelReplies", "ModelSource",
    "ProjectTests", "emitter", "fix", "resolve_model", "suspects",
]

DEFAULT_TEST_COMMAND = "python -m pytest -q"

Event = Callable[[str, dict[str, Any]], None]
Emit = Callable[..., None]  # emit(kind, **data): an event, already bound to its receiver
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


class ModelReplies:
    """The model, made only when first asked (announced as a ``model`` event), and timed replies.

    Shared by fix and debug: ``timings["model_s"]`` adds up the seconds spent waiting for replies.
    """

    def __init__(self, source: ModelSource, *, max_tokens: int, timings: dict[str, float], event: Emit) -> None:
        self.source = source
        self.max_tokens = max_tokens
        self.timings = timings
        self.event = event

    def model(self) -> Model:
        if not isinstance(self.source, Model):
            self.event("model", status="loading")
            self.source = resolve_model(self.source)
        return self.source

    def ask(self, messages: list[Any], *, temperature: float, seed: int) -> str:
        model = self.model()
        start = time.monotonic()
        reply = model.complete(messages, max_tokens=self.max_tokens, temperature=temperature, seed=seed)
        self.timings["model_s"] += time.monotonic() - start
        return reply.text


class ProjectTests:
    """The test command on the project's copy in the sandbox, timed (``tests_s``, ``trace_s``)."""

    def __init__(self, box: ProjectSandbox, argv: list[str], *, test_timeout: float, timeout: float,
                 timings: dict[str, float]) -> None:
        self.box = box
        self.argv = argv
        self.test_timeout = test_timeout
        self.timeout = timeout
        self.timings = timings

    def run(self, trace: tuple[str, str] | None = None) -> TestRun:
        start = time.monotonic()
        run = self.box.run_tests(self.argv, test_timeout=self.test_timeout, timeout=self.timeout, trace=trace)
        self.timings["trace_s" if trace else "tests_s"] += time.monotonic() - start
        return run

    def write(self, files: dict[str, str]) -> None:
        """Change the copy (never the user's files)."""
        self.box.write(files)


def emitter(on_event: Event | None) -> Emit:
    """``on_event`` as ``emit(kind, **data)``; a no-op when there is none."""

    def emit(kind: str, **data: Any) -> None:
        if on_event is not None:
            on_event(kind, data)

    return emit


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
    event = emitter(on_event)
    timings = {"model_s": 0.0, "tests_s": 0.0, "trace_s": 0.0}
    replies = ModelReplies(model, max_tokens=max_tokens, timings=timings, event=event)
    with ProjectSandbox(snapshot, project.targets, sandbox=sandbox) as box:
        tests = ProjectTests(box, argv, test_timeout=test_timeout, timeout=timeout, timings=timings)
        event("tests", status="running", what="before")
        before = tests.run()
        _check_collectable(before, project.targets)
        event("tests", status="done", what="before", counts=before.counts())
        repair = FixWorkflow(replies, tests, originals, all_texts, before, rounds=rounds, samples=samples,
                             temperature=temperature, event=event)
        drive(repair)
    current, history, best_run = repair.current, repair.history, repair.best_run
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
    timings["total_s"] = time.monotonic() - start
    result.timings = dict(timings)
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
class Candidate:
    """One model reply in a round: the target file's new text, or None when no definition applies."""

    index: int  # 0-based within the round: candidate ``index + 1`` in messages
    text: str | None


@dataclass
class _Round:
    """The open round: where it looks, what it asks, and the best candidate run so far."""

    record: FixRound
    prompts: list[list[Any]]
    started: float
    asked: int = 0
    seen: set[str] = field(default_factory=set)
    best: tuple[tuple[int, int, int], str, TestRun] | None = None


class FixWorkflow:
    """"Make the project's tests pass", driven by :func:`codeloop.engine.drive`.

    An attempt is a :class:`Candidate`. A round localises the fault and asks up to ``samples``
    candidates for one function; the rounds continue while the tests fail, ``rounds`` at most.

    * generate: open a round when none is open (suspect, trace, the two prompt kinds), then ask
      for the round's next candidate: each prompt kind greedy first, then sampled, seeded by
      round and candidate;
    * review: refuse a reply with no usable definition, a repeat of the current text or of an
      earlier candidate, and a change :func:`~codeloop.workflows.patch.review_change` rejects
      (test files, deleted tests or assertions, test gaming);
    * run: write the candidate into the copy and run the tests in the sandbox;
    * observe: keep the round's best run; when the round is over (a candidate passed, or
      ``samples`` asked), keep its best only if it beats what it replaces, else put the copy
      back and feed the failed attempt and its failure into the next round's prompt;
    * judge: done when the tests pass or the rounds are used up.

    Its collaborators come as arguments: the model (:class:`ModelReplies`), the tests on the copy
    (:class:`ProjectTests`), and where events go. The result is read off ``current`` (the best
    texts), ``history`` (one :class:`FixRound` per round) and ``best_run``.
    """

    def __init__(self, replies: ModelReplies, tests: ProjectTests, originals: dict[str, str],
                 all_texts: dict[str, str], before: TestRun, *, rounds: int, samples: int, temperature: float,
                 event: Emit) -> None:
        self.replies = replies
        self.tests = tests
        self.current = dict(originals)
        self.all_texts = dict(all_texts)
        self.best_run = before
        self.rounds = rounds
        self.samples = max(1, samples)
        self.temperature = temperature
        self.event = event
        self.history: list[FixRound] = []
        self.stall = 0  # rounds in a row without progress: the next suspect is tried
        self.previous: str | None = None  # the last round's failed attempt, shown in the next prompt
        self.round: _Round | None = None

    # -- the five phases -------------------------------------------------------------------------

    def generate(self) -> Candidate | None:
        if self.round is not None and self.round.asked >= self.samples:  # its last candidate was refused
            self._close_round()
        if self.round is None:
            if self.best_run.ok or len(self.history) >= self.rounds:
                return None
            self.round = self._open_round(len(self.history) + 1)
        r = self.round
        k = r.asked
        r.asked += 1
        repeat = k // len(r.prompts)
        reply = self.replies.ask(r.prompts[k % len(r.prompts)], temperature=0.0 if repeat == 0 else self.temperature,
                                 seed=1000 * r.record.number + k)
        text = None
        for code in _candidate_code(reply):
            text = replace_function(self.current[r.record.file], r.record.function, code)
            if text is not None:
                break
        return Candidate(index=k, text=text)

    def review(self, candidate: Candidate) -> Review:
        r = self._open()
        file = r.record.file
        if candidate.text is None:
            r.record.rejected.append(f"candidate {candidate.index + 1}: no usable definition of {r.record.function}")
            return Review.SKIP
        if candidate.text == self.current[file] or candidate.text in r.seen:
            return Review.SKIP
        r.seen.add(candidate.text)
        reasons = review_change({file: self.current[file]}, {file: candidate.text})
        if reasons:
            r.record.rejected.append(f"candidate {candidate.index + 1}: " + "; ".join(reasons))
            return Review.SKIP
        r.record.candidates += 1
        return Review.RUN

    def run(self, candidate: Candidate) -> TestRun:
        r = self._open()
        assert candidate.text is not None  # review refused the others
        self.tests.write({r.record.file: candidate.text})
        run = self.tests.run()
        self.event("candidate", round=r.record.number, candidate=candidate.index + 1, counts=run.counts())
        return run

    def observe(self, candidate: Candidate, run: TestRun) -> None:
        r = self._open()
        assert candidate.text is not None
        if r.best is None or run.score() > r.best[0]:
            r.best = (run.score(), candidate.text, run)
        if run.ok or r.asked >= self.samples:
            self._close_round()

    def judge(self, candidate: Candidate, run: TestRun) -> Verdict:
        if self.best_run.ok or (self.round is None and len(self.history) >= self.rounds):
            return Verdict.DONE
        return Verdict.AGAIN

    # -- rounds ----------------------------------------------------------------------------------

    def _open(self) -> _Round:
        assert self.round is not None, "a candidate belongs to an open round"
        return self.round

    def _open_round(self, number: int) -> _Round:
        """Localise the fault (traceback, the test's calls, a trace of the failing test) and build the prompts."""
        started = time.monotonic()
        last, current, all_texts, stall = self.best_run, self.current, self.all_texts, self.stall
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
            traced = self.tests.run(trace=(focus.nodeid, file))
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
                                  tests=tests, trace=trace, trace_source=current[file], previous=self.previous)
        header = function_header(span.source(current[file]))
        # Two kinds of request, alternating: fix the code shown with the evidence, and write the function
        # afresh from its header and tests. Each kind is asked greedily first, then sampled.
        prompts = [fix_prompt]
        if header and any(src for _t, src in tests):
            prompts.append(spec_messages(function=function, header=header, module_context=context, tests=tests))
        self.event("round_start", round=number, file=file, function=function)
        return _Round(record=FixRound(number=number, file=file, function=function), prompts=prompts, started=started)

    def _close_round(self) -> None:
        """Keep the round's best candidate if it beats what it replaces; else restore the copy and say why."""
        r = self._open()
        self.round = None
        record, file, last = r.record, r.record.file, self.best_run
        feedback = None
        if r.best is not None and r.best[0] > last.score():
            record.accepted = True
            self.tests.write({file: r.best[1]})
            record.tests = r.best[2].counts()
        else:
            self.tests.write({file: self.current[file]})
            record.tests = last.counts()
            if r.best is not None:
                tried = find_function(r.best[1], record.function)
                still = r.best[2].failures
                feedback = (
                    f"```python\n{tried.source(r.best[1]) if tried else ''}```\n"
                    + (f"It still failed: {describe_failure(still[0], 300)}" if still else "It did not make more tests pass.")
                )
        record.seconds = time.monotonic() - r.started
        self.history.append(record)
        if record.accepted:
            assert r.best is not None
            self.best_run = r.best[2]
            self.current[file] = self.all_texts[file] = r.best[1]
            self.stall = 0
            self.previous = None
        else:
            self.stall += 1
            self.previous = feedback
        self.event("round", **record.to_dict())

def _module_context(text: str, before_line: int, limit: int = 25) -> str:
    """Imports and module-level names above the function: enough for the model to know the names."""
    lines = text.splitlines()[: before_line - 1]
    keep = [ln for ln in lines if ln and not ln.startswith((" ", "\t", "#")) and not ln.startswith(("def ", "async def ", "@", "class "))]
    keep = [ln for ln in keep if not ln.startswith(('"""', "'''"))]
    return "\n".join(keep[:limit])
