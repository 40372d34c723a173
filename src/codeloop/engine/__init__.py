"""The loop engine: generate -> review -> run -> observe -> judge, with a workflow plugged in.

:func:`drive` sequences a :class:`Workflow`'s phases; :func:`read_reply` reads every model reply
(one end rule per workflow, one repetition cutter); :mod:`codeloop.engine.imports` is the one
missing-import fixer. The engine depends on the model and sandbox contracts only
(:mod:`codeloop.llm.contract`, :mod:`codeloop.sandbox.contract`), never on a workflow.
"""

from __future__ import annotations

from codeloop.engine.generation import EndRule, Generation, read_reply
from codeloop.engine.imports import import_for_name_error, missing_imports
from codeloop.engine.loop import Review, Verdict, Workflow, drive

__all__ = [
    "EndRule",
    "Generation",
    "Review",
    "Verdict",
    "Workflow",
    "drive",
    "import_for_name_error",
    "missing_imports",
    "read_reply",
]
