"""Check samples in children forked from a jailed template session (the checker's fast path).

A fresh jailed session per sample costs a bubblewrap and an interpreter start (about 30 ms on
2 cores); forking a child of a session that is already jailed and has run nothing but the fork
server (``zygote_cell.py``) costs about a millisecond, and gives the sample the same start:
a new process, a new namespace, an empty directory, nothing left by the sample before it. The
layers of the session (namespaces, Landlock, seccomp, rlimits, cgroups, its own uid) hold for
every child. ``docs/evals.md`` describes what a sample can and cannot do.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from codeloop.errors import SandboxError
from codeloop.evals.checker import CheckResult, Outcome, program_cell
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import Session, SessionFactory, error_summary
from codeloop.sandbox.layers import plain_names
from codeloop.sandbox.result import RunResult

__all__ = ["ForkChecker", "check_source"]

_TEMPLATE = Path(__file__).with_name("zygote_cell.py").read_text(encoding="utf-8")


def check_source(problem: Problem) -> str:
    """The hidden test and the call of ``check`` (the child adds the guard and the token)."""
    return f"{problem.test}\n\ncheck({problem.entry_point})\n"


def _verdict(result: RunResult) -> tuple[str, str, str, bool] | None:
    """``(outcome, text, stage, restart)`` from a check cell's last stdout line; None if there is none."""
    if result.status != "ok":
        return None
    lines = result.stdout.strip().splitlines()
    try:
        outcome, text, stage, restart = json.loads(lines[-1])
    except (IndexError, ValueError, TypeError, RecursionError, MemoryError):
        return None
    return str(outcome), str(text), str(stage), restart is not False


class ForkChecker:
    """One jailed template session that checks samples one at a time, each in a forked child."""

    def __init__(self, open_session: SessionFactory, *, timeout: float) -> None:
        self._open_session = open_session
        self.timeout = timeout
        self._context: AbstractContextManager[Session] | None = None
        self._session: Session | None = None

    def __enter__(self) -> ForkChecker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> Session:
        context = self._open_session()
        session = context.__enter__()
        self._context, self._session = context, session
        isolation = getattr(session, "isolation", {}) or {}
        # Killing every process of the session's uid is right only inside its own pid namespace
        # with a uid of its own; anywhere else it could reach processes that are not the sample's.
        sweep = bool(isolation.get("namespaces") and isolation.get("uid"))
        # In a mount namespace /tmp is the session's own tmpfs: the template may clean inside it.
        # Anywhere else /tmp may be the host's, shared with processes that are not the session's:
        # the template never cleans it, and gives the checks a temp directory of the session's own
        # (the jail's TMPDIR, made for this session alone, when a jail layer runs it; else one of
        # its own inside the session directory).
        private_tmp = bool(isolation.get("namespaces"))
        jailed = any(on for name, on in isolation.items() if name not in plain_names())
        own_tmpdir = jailed and not private_tmp
        started = session.run(
            _TEMPLATE + f"\n_codeloop_zygote = _Zygote(sweep={sweep}, private_tmp={private_tmp}, own_tmpdir={own_tmpdir})\n",
            timeout=30,
        )
        if started.status != "ok":
            self.close()
            raise SandboxError(f"the checker's template session did not start: {started.status} {error_summary(started)}")
        return session

    def close(self) -> None:
        context, self._context, self._session = self._context, None, None
        if context is not None:
            context.__exit__(None, None, None)

    def check(self, sample: Sample, problem: Problem, *, timeout: float | None = None) -> CheckResult:
        """The verdict on one sample; a template that died is replaced and the sample retried once."""
        started = time.perf_counter()
        timeout = self.timeout if timeout is None else timeout
        # The verdict comes back as one JSON line on the template's stdout (the children's goes to
        # /dev/null): json is safe to parse from many threads, where CPython 3.11's ast is not
        # (ast.literal_eval in two threads can raise "AST constructor recursion depth mismatch").
        cell = (
            f"print(__import__('json').dumps(_codeloop_zygote.check({program_cell(problem, sample.completion)!r}, "
            f"{check_source(problem)!r}, {timeout!r})))"
        )
        for _ in range(2):
            session = self._session or self._start()
            # The template enforces the sample's timeouts; this bound is for the template itself.
            result = session.run(cell, timeout=2 * timeout + 10)
            verdict = _verdict(result)
            if verdict is not None:
                outcome, text, stage, restart = verdict
                status = "ok" if outcome == "passed" else "error"
                if restart:  # the sample changed what the next one would start from: a new template
                    self.close()
                break
            # The template died (the sample killed it, or the sandbox failed): start a new one.
            self.close()
        else:
            outcome, text, stage = "failed", "failed: the process died (exit, kill or crash)", "program"
            status = str(result.status)
        duration = time.perf_counter() - started
        return CheckResult(sample.task_id, sample.completion_id, Outcome(outcome), text, stage, status, duration)
