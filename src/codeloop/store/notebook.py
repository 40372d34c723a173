"""Export a run or chat as a Jupyter notebook (nbformat v4) that re-executes cleanly.

Prose becomes markdown, code becomes code cells with the outputs they had (stdout, stderr, the
last value, the error, figures). Cells that failed with an error are tagged ``raises-exception``
so Jupyter and nbclient run on past them; cells that timed out, ran out of memory or crashed
are shown as Markdown, never as code, because re-running them would hang or kill the kernel.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbformat import v4

from codeloop.agent.result import AgentResult, Step
from codeloop.errors import HistoryError
from codeloop.text import fence, parse_reply

__all__ = ["export_notebook", "to_notebook"]

_RUNNABLE = ("ok", "error")


def _outputs(step: Step, count: int) -> list[Any]:
    outcome = step.outcome
    assert outcome is not None
    outputs: list[Any] = []
    if outcome.stdout:
        outputs.append(v4.new_output("stream", name="stdout", text=outcome.stdout))
    if outcome.stderr:
        outputs.append(v4.new_output("stream", name="stderr", text=outcome.stderr))
    for fig in step.figures:
        png = fig.png
        if png is None and fig.path and os.path.exists(fig.path):
            png = Path(fig.path).read_bytes()
        if png is not None:
            outputs.append(
                v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode("ascii")})
            )
    if outcome.status == "ok" and outcome.value is not None:
        outputs.append(
            v4.new_output("execute_result", data={"text/plain": outcome.value}, execution_count=count)
        )
    if outcome.status == "error" and outcome.error:
        outputs.append(
            v4.new_output(
                "error",
                ename=outcome.error.ename or "Error",
                evalue=outcome.error.evalue,
                traceback=outcome.error.traceback.splitlines(),
            )
        )
    return outputs


def _step_cells(step: Step, count: int) -> tuple[list[Any], int]:
    cells: list[Any] = []
    prose = parse_reply(step.model_text).prose if step.code else ""
    if prose:
        cells.append(v4.new_markdown_cell(prose))
    if step.code is None:
        return cells, count
    if step.outcome is None:
        cells.append(
            v4.new_markdown_cell(
                "Code the model wrote but the loop did not run (a limit was reached):\n\n"
                + fence(step.code, "python")
            )
        )
        return cells, count
    if step.outcome.status not in _RUNNABLE:
        cells.append(
            v4.new_markdown_cell(
                f"This cell stopped with status **{step.outcome.status}** in the sandbox, so it is not "
                "included as runnable code:\n\n" + fence(step.code, "python")
            )
        )
        return cells, count
    count += 1
    cell = v4.new_code_cell(step.code, execution_count=count, outputs=_outputs(step, count))
    if step.outcome.status == "error":
        cell.metadata["tags"] = ["raises-exception"]
    cells.append(cell)
    return cells, count


def to_notebook(turns: Sequence[AgentResult], title: str | None = None) -> nbformat.NotebookNode:
    """A notebook of the given turns, in order."""
    cells: list[Any] = []
    model = next((t.model for t in turns if t.model), "")
    header = f"# {title or (turns[0].task if turns else 'codeloop')}"
    if model:
        header += f"\n\nWritten and run by codeloop with model `{model}`."
    cells.append(v4.new_markdown_cell(header))
    count = 0
    for turn in turns:
        cells.append(v4.new_markdown_cell(f"**Task:** {turn.task}"))
        for step in turn.steps:
            step_cells, count = _step_cells(step, count)
            cells.extend(step_cells)
        if turn.answer is not None:
            note = " *(taken from the executed output)*" if turn.answer_source == "output" else ""
            cells.append(v4.new_markdown_cell(f"**Answer:** {turn.answer}{note}"))
        else:
            cells.append(
                v4.new_markdown_cell(f"*No answer: the run ended with status `{turn.status.value}`.*")
            )
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def export_notebook(turns: Sequence[AgentResult], path: Path, title: str | None = None) -> Path:
    """Write the turns as a validated ``.ipynb`` at ``path`` (atomically: a half file never appears)."""
    nb = to_notebook(turns, title)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:  # a bug of ours, not the user's: say so plainly
        raise HistoryError(f"the exported notebook does not validate: {e}") from e
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".ipynb", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except OSError as e:
        raise HistoryError(f"cannot write the notebook to {path}: {e}") from e
    return path
