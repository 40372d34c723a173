"""Dump every prompt the HumanEval harness sends and every program it checks, for before/after diffs.

A refactor of the harness must not change what the model is shown or what is checked. This runs
the real generation path (``runner.generate_samples``, plain mode) on all 164 problems in each of
the four prompt styles with a recording model that answers with the canonical solution, and
writes the model calls (prompt, stops, sampling), the samples' meta, completions, the programs
and the hidden-test cells to one JSON file. Run it on two trees and compare:

    PYTHONPATH=/old/tree/src .venv/bin/python bench/prompts_dump.py /tmp/before.json
    PYTHONPATH=src .venv/bin/python bench/prompts_dump.py /tmp/after.json
    cmp /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeloop.evals import runner
from codeloop.evals.checker import check_program, program_cell
from codeloop.evals.generation import GenerationSettings, Mode
from codeloop.evals.problems import Problem, load_humaneval
from codeloop.evals.prompts import PromptStyle

STYLES = ("chatml", "instruct", "chat", "complete")


class _Reply:
    def __init__(self, text: str) -> None:
        self.text = text
        self.usage = None


class _Stream:
    def __init__(self, text: str) -> None:
        self.text = text
        self.reply: _Reply | None = None

    def __iter__(self) -> Iterator[str]:
        for i in range(0, len(self.text), 7):
            yield self.text[i : i + 7]
        self.reply = _Reply(self.text)

    def close(self) -> None:
        pass


class Recorder:
    """Records every call; answers with the current problem's canonical solution in the style's shape."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.style = "chatml"
        self.problem: Problem | None = None

    def _text(self) -> str:
        p = self.problem
        assert p is not None
        return {
            "chatml": p.canonical_solution + "```\n",
            "complete": p.canonical_solution,
            "instruct": p.prompt + p.canonical_solution + "```\n",
            "chat": "Here:\n```python\n" + p.prompt + p.canonical_solution + "```\n",
        }[self.style]

    def stream_text(self, prompt: str, **kw: Any) -> _Stream:
        self.calls.append(["stream_text", prompt, sorted(kw.items())])
        return _Stream(self._text())

    def complete_text(self, prompt: str, **kw: Any) -> _Reply:
        self.calls.append(["complete_text", prompt, sorted(kw.items())])
        return _Reply(self._text())

    def complete(self, messages: Any, **kw: Any) -> _Reply:
        self.calls.append(["complete", messages, sorted(kw.items())])
        return _Reply(self._text())


def main(out_path: str) -> None:
    problems = load_humaneval()
    model = Recorder()
    out: dict[str, Any] = {}
    for style in STYLES:
        model.style = style
        settings = GenerationSettings(mode=Mode.PLAIN, style=PromptStyle(style), seed=3)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "samples.jsonl"
            samples = []
            for p in problems.values():
                model.problem = p
                samples += runner.generate_samples(
                    [p], problems, model, settings, path, n=1, model_name="rec", open_session=None
                )
            out[f"{style}:meta"] = json.loads(runner.meta_path(path).read_text())
        for s in samples:
            p = problems[s.task_id]
            out[f"{style}:{s.task_id}"] = {
                "completion": s.completion,
                "program": program_cell(p, s.completion),
                "test": check_program(p, "TOKEN", 0),
            }
    out["calls"] = model.calls
    Path(out_path).write_text(json.dumps(out, indent=1, sort_keys=True))
    digest = hashlib.sha256(Path(out_path).read_bytes()).hexdigest()
    print(f"{len(model.calls)} model calls, {len(problems)} problems x {len(STYLES)} styles; sha256 {digest}")


if __name__ == "__main__":
    main(sys.argv[1])
