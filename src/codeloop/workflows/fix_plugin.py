"""The pytest plugin ``codeloop fix`` loads into the test run inside the sandbox (never on the host).

It is copied into the sandbox as a module and named in ``PYTEST_PLUGINS``, so it works for any
command that ends up running pytest. It writes pytest's own reports as JSON (``CODELOOP_FIX_REPORT``):
per test its outcome, the assertion or exception text, and the traceback frames with the local
variables of frames in the files being fixed (``CODELOOP_FIX_TARGETS``); plus collection errors. A
test that runs past ``CODELOOP_FIX_TEST_TIMEOUT`` seconds is interrupted by an alarm where it spins,
so a hang becomes a failure with a location. With ``CODELOOP_FIX_TRACE`` it traces one test with
codeloop's bounded line tracer (``_codeloop_trace`` and its ``_CODELOOP_TRACECORE``, appended to this
file when it is copied) through the file under test. Stdlib and pytest only.
"""

from __future__ import annotations

import json
import os
import reprlib
import signal
import sys
import types
from typing import Any

import pytest

_REPORT = os.environ.get("CODELOOP_FIX_REPORT", "")
_TIMEOUT = float(os.environ.get("CODELOOP_FIX_TEST_TIMEOUT", "0") or 0)
_TARGETS = {os.path.realpath(p) for p in json.loads(os.environ.get("CODELOOP_FIX_TARGETS", "[]"))}
_TRACE = json.loads(os.environ.get("CODELOOP_FIX_TRACE", "null"))
_MAX_TESTS = 400

_shorten = reprlib.Repr()
_shorten.maxstring = _shorten.maxother = 80
_shorten.maxlist = _shorten.maxtuple = _shorten.maxset = _shorten.maxdict = 8
_shorten.maxlevel = 3

_state: dict[str, Any] = {"tests": [], "collect_errors": [], "collected": 0, "trace": None}


class CodeloopTestTimeout(BaseException):
    """Raised by the alarm inside a test that runs past its time limit (not an Exception: a bare
    ``except Exception`` in the code under test cannot swallow it)."""


def _repr(value: object) -> str:
    try:
        return _shorten.repr(value)
    except Exception:
        return "<unrepresentable>"


def _line_of(filename: str, lineno: int) -> str:
    try:
        with open(filename, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if n == lineno:
                    return line.strip()[:200]
    except OSError:
        pass
    return ""


def _frames(tb: types.TracebackType | None) -> list[dict[str, Any]]:
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        target = os.path.realpath(filename) in _TARGETS
        entry: dict[str, Any] = {
            "file": filename,
            "line": tb.tb_lineno,
            "function": code.co_name,
            "code": _line_of(filename, tb.tb_lineno),
            "target": target,
        }
        if target:
            entry["locals"] = {
                k: _repr(v)
                for k, v in list(tb.tb_frame.f_locals.items())[:16]
                if not k.startswith("__") and not callable(v) and not isinstance(v, types.ModuleType)
            }
        out.append(entry)
        tb = tb.tb_next
    here = os.path.realpath(__file__)
    out = [f for f in out if "_pytest" not in f["file"] and "pluggy" not in f["file"] and os.path.realpath(f["file"]) != here]
    return out[-12:]


def _alarm(signum: int, frame: types.FrameType | None) -> None:
    raise CodeloopTestTimeout(f"the test ran past {_TIMEOUT:g} s (an endless loop?)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    armed = _TIMEOUT > 0 and hasattr(signal, "setitimer")
    old = None
    if armed:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, _TIMEOUT, 1.0)  # fires again if the code swallows it
    try:
        yield
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" and rep.passed:
        return
    if len(_state["tests"]) >= _MAX_TESTS:
        return
    status = rep.outcome
    if rep.when != "call" and rep.failed:
        status = "error"
    path, lineno, _ = item.location
    entry: dict[str, Any] = {
        "nodeid": rep.nodeid,
        "when": rep.when,
        "outcome": status,
        "duration": round(rep.duration, 4),
        "file": path,
        "line": (lineno or 0) + 1,
        "function": getattr(item, "originalname", None) or item.name,
    }
    if call.excinfo is not None and not rep.skipped:
        entry["type"] = call.excinfo.typename
        entry["message"] = str(call.excinfo.value)[:1500]
        entry["frames"] = _frames(call.excinfo.tb)
        entry["timed_out"] = isinstance(call.excinfo.value, CodeloopTestTimeout)
        entry["longrepr"] = str(rep.longrepr)[-2500:]
    _state["tests"].append(entry)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed and len(_state["collect_errors"]) < 20:
        _state["collect_errors"].append({"nodeid": report.nodeid, "longrepr": str(report.longrepr)[-2500:]})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _state["collected"] = len(items)


def _module_file(target: str) -> str:
    """The file name the interpreter compiled ``target`` under (the tracer compares names exactly)."""
    real = os.path.realpath(target)
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str) and os.path.realpath(name) == real:
            return name
    return target


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if not _TRACE or pyfuncitem.nodeid != _TRACE.get("nodeid"):
        return None
    tracer, core = globals().get("_codeloop_trace"), globals().get("_CODELOOP_TRACECORE")
    if tracer is None or core is None:
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    # The tracer learns which file to trace from the code of its entry point; give it just that.
    target = types.SimpleNamespace(__code__=types.SimpleNamespace(co_filename=_module_file(_TRACE["file"])))
    namespace = {"_codeloop_trace": tracer, "_codeloop_test": pyfuncitem.obj, "_codeloop_kwargs": kwargs,
                 "_codeloop_target": target, "_codeloop_limits": _TRACE["limits"], "_codeloop_core": core}
    code = ("_codeloop_out = _codeloop_trace('_codeloop_test(**_codeloop_kwargs)', '_codeloop_target', _codeloop_limits,"
            " _codeloop_core)")
    exec(compile(code, "<codeloop-trace>", "exec"), namespace)
    _state["trace"] = namespace["_codeloop_out"]
    return True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _REPORT:
        return
    _state["exitstatus"] = int(exitstatus)
    with open(_REPORT, "w", encoding="utf-8") as f:
        json.dump(_state, f)
