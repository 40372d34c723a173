"""Paired comparison of two runs on the same problems: is B's difference from A more than noise?

Greedy pass@1 of a small model moves a lot under any perturbation (an adapter, another prompt):
problems flip both ways, and the net change alone hides that. On the problems both runs did,
``compare`` counts those B gained and those B lost and gives the exact two-sided sign test
(McNemar's exact test) of "gains and losses are equally likely": a small ``p`` says B really
differs; 24 flips split 10/14 (p = 0.54) is noise.

A run is ``{problem id: score in [0, 1]}``: 1/0 for one greedy sample, the passed fraction for
several samples (then a problem counts as gained when B's fraction is higher).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeloop.evals.errors import EvalError

__all__ = ["PairedResult", "compare", "read_scores", "sign_test"]


@dataclass(frozen=True)
class PairedResult:
    problems: int  # in both runs
    a_score: float  # sum of A's scores on them (problems passed, for one sample each)
    b_score: float
    gained: int  # B better than A
    lost: int  # B worse than A
    p_value: float  # exact two-sided sign test on gained vs lost
    only_a: int  # problems only A has (left out)
    only_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sign_test(gained: int, lost: int) -> float:
    """Exact two-sided p-value of ``gained`` vs ``lost`` under Binomial(gained + lost, 1/2)."""
    if gained < 0 or lost < 0:
        raise ValueError("counts must be non-negative")
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(a: Mapping[str, float], b: Mapping[str, float]) -> PairedResult:
    common = sorted(set(a) & set(b))
    gained = sum(1 for k in common if b[k] > a[k])
    lost = sum(1 for k in common if b[k] < a[k])
    return PairedResult(
        problems=len(common),
        a_score=round(sum(a[k] for k in common), 6),
        b_score=round(sum(b[k] for k in common), 6),
        gained=gained,
        lost=lost,
        p_value=sign_test(gained, lost),
        only_a=len(set(a) - set(b)),
        only_b=len(set(b) - set(a)),
    )


# bench/agent_tasks.py's printed lines: "ok  f-str-1  [--model X] answered ..." / "BAD ..."
_AGENT_LINE = re.compile(r"^(ok |BAD) (\S+)\s+\[(.*?)\] ")


def read_scores(path: Path, config: str | None = None) -> dict[str, float]:
    """Per-problem scores from an eval results JSONL (``task_id``, ``passed``; several samples of a
    problem average), ``bench/agent_tasks.py --out`` JSONL (``task_id``, ``ok``, ``config``) or its
    printed log. For a file holding several configurations ``config`` picks one ("default" is the
    configuration without extra arguments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EvalError(f"cannot read {path}: {e.strerror or e}") from e
    totals: dict[str, list[float]] = {}
    configs: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row: Any
        match = _AGENT_LINE.match(line)
        if match:
            row = {"task_id": match.group(2), "ok": match.group(1).strip() == "ok", "config": match.group(3)}
        elif line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalError(f"{path}:{number}: not JSON ({e.msg})") from e
        else:
            continue  # a log's other lines (headers, summaries)
        if not isinstance(row, dict) or not isinstance(row.get("task_id"), str):
            raise EvalError(f"{path}:{number}: a row needs a task_id")
        verdict = row.get("passed", row.get("ok"))
        if not isinstance(verdict, bool):
            raise EvalError(f"{path}:{number}: a row needs a boolean 'passed' or 'ok'")
        which = str(row.get("config") or "default")
        configs.add(which)
        if config is not None and which != config:
            continue
        totals.setdefault(row["task_id"], []).append(1.0 if verdict else 0.0)
    if config is None and len(configs) > 1:
        raise EvalError(f"{path} holds several configurations ({', '.join(sorted(configs))}): name one")
    if not totals:
        what = f" for configuration {config!r}" if config is not None else ""
        raise EvalError(f"{path}: no results{what}")
    return {task: sum(v) / len(v) for task, v in totals.items()}
