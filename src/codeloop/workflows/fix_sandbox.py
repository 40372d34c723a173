"""A copy of the user's project in a sandbox session, and test runs on it read from pytest's reports.

The copy is made by the sandboxed worker itself (the host sends the files inside a cell), and every
later edit of the copy is a cell too, so the host never writes into a directory sandboxed code can
change. A test run is one cell: it starts the test command as a child process in the copy with
:mod:`codeloop.workflows.fix_plugin` loaded, and returns pytest's structured report as JSON. All
of it comes from sandboxed code, so the host reads it as hostile: bounded, type-checked, never
trusted as a path.
"""

from __future__ import annotations

import ast
import base64
import inspect
import io
import json
import shlex
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeloop.errors import SandboxError
from codeloop.sandbox import Sandbox
from codeloop.sandbox.tracing import Trace, TraceError, TraceLimits, parse_trace, tracer_source
from codeloop.workflows.snapshot import InputError, Snapshot

__all__ = ["Frame", "ProjectSandbox", "TestOutcome", "TestRun", "split_command"]

_PLUGIN_NAME = "_codeloop_fix_plugin"
_MAX_VALUE = 4_000_000


def split_command(command: str | Sequence[str]) -> list[str]:
    """The test command as argv (a string is split like a POSIX shell would, without running one)."""
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise InputError(f"cannot read the test command {command!r}: {e}") from None
    else:
        argv = [str(a) for a in command]
    if not argv:
        raise InputError("the test command is empty")
    return argv


def _s(value: Any, limit: int = 2000) -> str:
    return str(value)[:limit] if value is not None else ""


def _i(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass(frozen=True)
class Frame:
    """One traceback frame: file (project-relative when inside the copy), line, function, locals."""

    file: str
    line: int
    function: str
    code: str
    target: bool
    locals: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function, "code": self.code,
                "locals": dict(self.locals)}


@dataclass(frozen=True)
class TestOutcome:
    """One test's result as pytest reported it."""

    nodeid: str
    outcome: str  # passed, failed, error, skipped
    file: str
    line: int
    function: str
    when: str = "call"
    type: str = ""
    message: str = ""
    longrepr: str = ""
    timed_out: bool = False
    frames: list[Frame] = field(default_factory=list)

    @property
    def bad(self) -> bool:
        return self.outcome in ("failed", "error")


@dataclass
class TestRun:
    """One run of the test command on the copy."""

    exit_code: int | None
    timed_out: bool
    output: str
    duration: float
    structured: bool  # pytest's report was read (else only the exit status and output are known)
    tests: list[TestOutcome] = field(default_factory=list)
    collect_errors: list[str] = field(default_factory=list)
    collected: int = 0
    trace: Trace | None = None
    trace_error: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for t in self.tests if t.outcome == outcome)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        return self.count("failed") + self.count("error") + len(self.collect_errors)

    @property
    def ok(self) -> bool:
        """The tests pass: exit status 0 in time, and pytest saw no failure."""
        return self.exit_code == 0 and not self.timed_out and (not self.structured or self.failed == 0)

    @property
    def failures(self) -> list[TestOutcome]:
        return [t for t in self.tests if t.bad]

    def counts(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": self.count("failed"),
            "errors": self.count("error") + len(self.collect_errors),
            "skipped": self.count("skipped"),
            "collected": self.collected,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "ok": self.ok,
        }

    def score(self) -> tuple[int, int, int]:
        """Higher is better: all passing first, then more passing tests, then fewer failures."""
        return (int(self.ok), self.passed, -self.failed)


def _run_cell_function(argv: list[str], env: dict[str, str], targets: list[str], timeout: float,
                       trace: dict[str, Any] | None) -> str:  # pragma: no cover - runs in the sandbox
    """Run the test command in ./project with the plugin; return a JSON record (runs in the sandbox)."""
    import json
    import os
    import subprocess
    import sys
    import time

    project = os.path.abspath("project")
    plugin_dir = os.path.abspath(".codeloop_fix")
    report = os.path.join(plugin_dir, "report.json")
    if os.path.exists(report):
        os.remove(report)
    if argv[0] in ("python", "python3"):
        argv = [sys.executable, *argv[1:]]
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (plugin_dir, full_env.get("PYTHONPATH", "")) if p)
    full_env["PYTEST_PLUGINS"] = "_codeloop_fix_plugin"
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    full_env["CODELOOP_FIX_REPORT"] = report
    full_env["CODELOOP_FIX_TARGETS"] = json.dumps([os.path.join(project, t) for t in targets])
    if trace is not None:
        trace = dict(trace, file=os.path.join(project, trace["file"]))
        full_env["CODELOOP_FIX_TRACE"] = json.dumps(trace)
    start = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.run(argv, cwd=project, env=full_env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        code, out = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as e:
        code, out, timed_out = None, e.output or b"", True
    except OSError as e:
        code, out = 127, f"cannot start {argv[0]}: {e}".encode()
    record = {"exit": code, "timed_out": timed_out, "output": out[-6000:].decode("utf-8", "replace"),
              "duration": time.monotonic() - start, "project": project, "report": None}
    if os.path.exists(report):
        with open(report, encoding="utf-8", errors="replace") as f:
            record["report"] = f.read(3_000_000)
    return json.dumps(record)


def _write_cell_function(payload: str) -> int:  # pragma: no cover - runs in the sandbox
    """Write files into ./project from a base64 zip (in the sandbox); deleted files are listed."""
    import base64
    import io
    import json
    import os
    import zipfile

    data = zipfile.ZipFile(io.BytesIO(base64.b64decode(payload)))
    removed = json.loads(data.read(".codeloop-removed.json"))
    for name in data.namelist():
        if name == ".codeloop-removed.json":
            continue
        path = os.path.join("project", name)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.lexists(path):
            os.remove(path)
        with open(path, "wb") as f:
            f.write(data.read(name))
    for name in removed:
        path = os.path.join("project", name)
        if os.path.lexists(path):
            os.remove(path)
    return len(data.namelist()) - 1


def _zip(files: Mapping[str, bytes], removed: Sequence[str] = ()) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(".codeloop-removed.json", json.dumps(list(removed)))
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plugin_source() -> str:
    return Path(__file__).with_name("fix_plugin.py").read_text(encoding="utf-8") + "\n\n" + tracer_source()


class ProjectSandbox:
    """A sandbox session holding a copy of a project in ``./project`` (the user's tree is not touched)."""

    def __init__(self, snapshot: Snapshot, targets: Sequence[str], *, sandbox: Sandbox | None = None,
                 memory_mb: int | None = 2048) -> None:
        self.targets = list(targets)
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(timeout=60.0, memory_mb=memory_mb, max_repr=_MAX_VALUE, prestart=False)
        try:
            self.run_cell(
                inspect.getsource(_write_cell_function)
                + "import os\nos.makedirs('project', exist_ok=True)\nos.makedirs('.codeloop_fix', exist_ok=True)\n"
                + f"with open('.codeloop_fix/{_PLUGIN_NAME}.py', 'w') as f:\n    f.write({_plugin_source()!r})\n"
                + f"_write_cell_function({_zip(snapshot.files)!r})\n",
                "copy the project into the sandbox",
            )
        except BaseException:
            self.close()
            raise

    def run_cell(self, code: str, what: str, timeout: float = 60.0) -> str | None:
        result = self.sandbox.run(code, timeout=timeout)
        if not result.ok:
            detail = result.error.traceback[-800:] if result.error else "; ".join(result.notes) or str(result.status)
            raise SandboxError(f"could not {what} ({result.status}): {detail}")
        return result.value

    def write(self, files: Mapping[str, str], removed: Sequence[str] = ()) -> None:
        """Replace files of the copy (relative path -> text)."""
        payload = _zip({k: v.encode("utf-8") for k, v in files.items()}, removed)
        self.run_cell(inspect.getsource(_write_cell_function) + f"_write_cell_function({payload!r})\n", "write the copy")

    def run_tests(self, command: Sequence[str], *, test_timeout: float = 5.0, timeout: float = 120.0,
                  trace: tuple[str, str] | None = None, trace_limits: TraceLimits | None = None) -> TestRun:
        """Run the test command in the copy; ``trace=(nodeid, file)`` also traces that test through ``file``."""
        argv = list(command)
        env = {"CODELOOP_FIX_TEST_TIMEOUT": str(test_timeout)}
        trace_spec = None
        if trace is not None:
            lim = trace_limits or TraceLimits(head=25, tail=25, max_steps=5000)
            trace_spec = {"nodeid": trace[0], "file": trace[1],
                          "limits": {"head": lim.head, "tail": lim.tail, "max_steps": lim.max_steps, "max_repr": lim.max_repr}}
            if any("pytest" in a for a in argv):
                argv = [*argv, trace[0]]  # only that test
        code = "from typing import Any\n" + inspect.getsource(_run_cell_function) + (
            f"_run_cell_function({argv!r}, {env!r}, {self.targets!r}, {float(timeout)!r}, {trace_spec!r})\n"
        )
        result = self.sandbox.run(code, timeout=timeout + 15)
        if not result.ok:
            detail = result.error.traceback[-800:] if result.error else "; ".join(result.notes) or str(result.status)
            raise SandboxError(f"could not run the tests in the sandbox ({result.status}): {detail}")
        return _read_run(result.value, trace is not None)

    def close(self) -> None:
        if self._own:
            self.sandbox.close()

    def __enter__(self) -> ProjectSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _relative(path: str, project: str) -> str:
    prefix = project.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def _read_run(value: str | None, traced: bool) -> TestRun:
    """Read a test-run record from the sandbox (hostile data: everything is checked and bounded)."""
    try:
        raw = json.loads(ast.literal_eval(value or "''"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise SandboxError(f"unreadable test record from the sandbox: {e}") from None
    if not isinstance(raw, dict):
        raise SandboxError("unreadable test record from the sandbox")
    project = _s(raw.get("project"), 4096)
    exit_code = raw.get("exit")
    run = TestRun(
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        timed_out=raw.get("timed_out") is True,
        output=_s(raw.get("output"), 6000),
        duration=float(raw["duration"]) if isinstance(raw.get("duration"), int | float) else 0.0,
        structured=False,
    )
    report_text = raw.get("report")
    if not isinstance(report_text, str):
        return run
    try:
        report = json.loads(report_text)
    except (ValueError, RecursionError):
        return run
    if not isinstance(report, dict):
        return run
    run.structured = True
    run.collected = _i(report.get("collected"))
    for err in (report.get("collect_errors") or [])[:20]:
        if isinstance(err, dict):
            run.collect_errors.append(f"{_s(err.get('nodeid'), 300)}: {_s(err.get('longrepr'), 2500)}")
    for t in (report.get("tests") or [])[:400]:
        if not isinstance(t, dict):
            continue
        frames = []
        for f in (t.get("frames") or [])[:12]:
            if not isinstance(f, dict):
                continue
            raw_locals = f.get("locals")
            loc = raw_locals if isinstance(raw_locals, dict) else {}
            frames.append(Frame(
                file=_relative(_s(f.get("file"), 1000), project), line=_i(f.get("line")),
                function=_s(f.get("function"), 200), code=_s(f.get("code"), 300), target=f.get("target") is True,
                locals={_s(k, 80): _s(v, 200) for k, v in list(loc.items())[:16]},
            ))
        outcome = _s(t.get("outcome"), 20)
        run.tests.append(TestOutcome(
            nodeid=_s(t.get("nodeid"), 500), outcome=outcome if outcome in ("passed", "failed", "error", "skipped") else "error",
            file=_s(t.get("file"), 1000), line=_i(t.get("line")), function=_s(t.get("function"), 200),
            when=_s(t.get("when"), 20), type=_s(t.get("type"), 200), message=_s(t.get("message"), 1500),
            longrepr=_s(t.get("longrepr"), 2500), timed_out=t.get("timed_out") is True, frames=frames,
        ))
    if traced and isinstance(report.get("trace"), str):
        try:
            run.trace = parse_trace(repr(report["trace"]))
        except TraceError as e:
            run.trace_error = str(e)
    return run
