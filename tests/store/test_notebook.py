"""Notebook export: nbformat v4, prose as markdown, code with its outputs, and it re-executes in Jupyter."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from codeloop.agent.result import AgentResult, CellOutcome, Figure, Step, TaskStatus
from codeloop.errors import HistoryError
from codeloop.store import export_notebook, to_notebook


def _turns(png: bytes, tmp_path: Path) -> list[AgentResult]:
    fig_path = tmp_path / "fig.png"
    fig_path.write_bytes(png)
    tb = 'Traceback (most recent call last):\n  File "<cell 2>", line 1, in <module>\nZeroDivisionError: division by zero'
    first = AgentResult(
        "Compute x and show a plot",
        model="fake-model",
        answer="x is 42",
        steps=[
            Step(
                0,
                "Let me compute it.\n```python\nx = 6 * 7\nprint(x)\nx\n```",
                "x = 6 * 7\nprint(x)\nx",
                CellOutcome("ok", stdout="42\n", value="42"),
                "obs",
                figures=[Figure(path=str(fig_path))],
            ),
            Step(
                1,
                "```python\n1 / 0\n```",
                "1 / 0",
                CellOutcome(
                    "error",
                    error={"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": tb},
                ),
            ),
            Step(2, "```python\nwhile True:\n    pass\n```", "while True:\n    pass", CellOutcome("timeout")),
            Step(
                3,
                "```python\ny = x + 1\nprint(y)\n```",
                "y = x + 1\nprint(y)",
                CellOutcome("ok", stdout="43\n"),
            ),
            Step(4, "x is 42"),
        ],
    )
    second = AgentResult(
        "And never finished",
        status=TaskStatus.MAX_STEPS,
        steps=[Step(0, "```python\nprint(y * 2)\n```", "print(y * 2)")],
    )
    return [first, second]


def test_notebook_structure(png: bytes, tmp_path: Path) -> None:
    nb = to_notebook(_turns(png, tmp_path), title="demo")
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert kinds[0] == "markdown"
    assert nb.cells[0].source.startswith("# demo")
    assert [c.source for c in code] == ["x = 6 * 7\nprint(x)\nx", "1 / 0", "y = x + 1\nprint(y)"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    first = code[0].outputs
    assert [o.output_type for o in first] == ["stream", "display_data", "execute_result"]
    assert base64.b64decode(first[1].data["image/png"]) == png
    assert code[1].metadata["tags"] == ["raises-exception"]
    assert code[1].outputs[0].ename == "ZeroDivisionError"
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Let me compute it." in md
    assert "**Answer:** x is 42" in md
    assert "status **timeout**" in md and "while True" in md  # shown, never runnable
    assert "did not run" in md
    assert "max_steps" in md


def test_exported_notebook_reexecutes_in_a_kernel(png: bytes, tmp_path: Path) -> None:
    path = export_notebook(_turns(png, tmp_path), tmp_path / "out" / "run.ipynb")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0].text == "42\n"
    assert code[2].outputs[0].text == "43\n"


def test_export_to_an_unwritable_place_is_a_clear_error(png: bytes, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(HistoryError, match="cannot write the notebook"):
        export_notebook(_turns(png, tmp_path), blocker / "x.ipynb")
