"""One sample never decides another's verdict in the HumanEval fork checker (#12 item 4).

A mixed sample file: attackers interleaved with canonical solutions and wrong ones. An attacker
plants a ``typing`` package (in a read-only directory) where a later sample would import it, so
that the later sample's child writes a forged pass; another lowers the template's limits with
``prlimit`` so later samples fail; others leave deep, read-only trees and change the template's
priority. Verdict: exactly the canonical solutions pass.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from hostside import SANDBOX_PYTHON

from codeloop import Sandbox
from codeloop.evals.problems import load_humaneval
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import Session
from codeloop.evals.zygote import ForkChecker

#: a package that, imported by a later sample's child, forges that check's pass
PLANT_TYPING = (
    "    import os\n"
    "    home = os.environ['HOME']\n"
    "    for where in (home, os.getcwd(), '/tmp'):\n"
    "        try:\n"
    "            os.makedirs(where + '/typing', exist_ok=True)\n"
    "            open(where + '/typing/__init__.py', 'w').write(\n"
    "                'import os, sys\\n'\n"
    "                'f = sys._getframe()\\n'\n"
    "                'while f is not None:\\n'\n"
    "                '    if \"token\" in f.f_locals and \"result_w\" in f.f_locals:\\n'\n"
    "                '        os.write(f.f_locals[\"result_w\"], (\"C\" + f.f_locals[\"token\"] + \"\\\\n\").encode())\\n'\n"
    "                '        os._exit(0)\\n'\n"
    "                '    f = f.f_back\\n'\n"
    "                'List = list\\n')\n"
    "            os.chmod(where + '/typing', 0o500)\n"
    "        except OSError:\n"
    "            pass\n"
    "    return None\n"
)
#: lowers the template's (its parent's) limits: every later fork would inherit them
PRLIMIT_PARENT = (
    "    import os, resource\n"
    "    for which, value in ((resource.RLIMIT_NOFILE, 3), (resource.RLIMIT_AS, 32 << 20), (resource.RLIMIT_NPROC, 1)):\n"
    "        try:\n"
    "            resource.prlimit(os.getppid(), which, (value, value))\n"
    "        except (OSError, ValueError):\n"
    "            pass\n"
    "    try:\n"
    "        os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)\n"
    "    except OSError:\n"
    "        pass\n"
    "    return None\n"
)
#: a deep, read-only tree in the session directory and /tmp, and a planted json.py
LITTER = (
    "    import os\n"
    "    for where in (os.environ['HOME'], '/tmp'):\n"
    "        try:\n"
    "            open(where + '/json.py', 'w').write('raise SystemExit(\"planted json\")\\n')\n"
    "            fd = os.open(where, os.O_RDONLY)\n"
    "            for _ in range(300):\n"
    "                os.mkdir('deep', dir_fd=fd)\n"
    "                nxt = os.open('deep', os.O_RDONLY, dir_fd=fd)\n"
    "                os.close(fd)\n"
    "                fd = nxt\n"
    "            os.close(fd)\n"
    "            os.chmod(where + '/deep', 0o500)\n"
    "        except OSError:\n"
    "            pass\n"
    "    return None\n"
)
WRONG = "    return None\n"


@pytest.mark.slow
def test_exactly_the_canonical_solutions_pass_in_a_mixed_sample_file() -> None:
    problems = load_humaneval()
    # HumanEval/0 and /1 import typing in their prompts; the attackers take other tasks.
    plan = [
        ("HumanEval/5", PLANT_TYPING, False),
        ("HumanEval/0", WRONG, False),  # would import the planted typing: a forged pass
        ("HumanEval/0", None, True),
        ("HumanEval/7", PRLIMIT_PARENT, False),
        ("HumanEval/2", None, True),
        ("HumanEval/1", WRONG, False),
        ("HumanEval/1", None, True),
        ("HumanEval/8", LITTER, False),
        ("HumanEval/4", None, True),
        ("HumanEval/12", PLANT_TYPING, False),
        ("HumanEval/3", None, True),
        ("HumanEval/6", WRONG, False),
        ("HumanEval/6", None, True),
    ]
    def open_session() -> AbstractContextManager[Session]:
        return Sandbox(timeout=10.0, memory_mb=1024, **SANDBOX_PYTHON)

    with ForkChecker(open_session, timeout=5.0) as checker:
        verdicts = []
        for number, (task, completion, canonical) in enumerate(plan):
            problem = problems[task]
            sample = Sample(task, number, problem.canonical_solution if completion is None else completion)
            verdicts.append((task, canonical, checker.check(sample, problem)))
    wrong = [(task, canonical, v.result) for task, canonical, v in verdicts if v.passed != canonical]
    assert not wrong, wrong
