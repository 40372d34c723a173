"""``codeloop run`` and ``codeloop history`` as real subprocesses.

The model is a scripted OpenAI-compatible server on 127.0.0.1 (real HTTP, real SSE streaming)
for exact, fast checks of the command; one test runs the embedded model end to end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from local_servers import ScriptedOpenAIServer, free_port


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def scripted() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer()
    try:
        yield server
    finally:
        server.close()


def codeloop(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codeloop", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scripted_run(server: ScriptedOpenAIServer, *args: str) -> subprocess.CompletedProcess[str]:
    return codeloop("run", "--model", "scripted", "--base-url", server.base_url, *args)


def fence(src: str) -> str:
    return f"```python\n{src}\n```"


def test_run_streams_the_work_and_prints_the_answer_last(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [fence("x = 6 * 7\nprint(x)"), "The answer is 42."]
    done = scripted_run(scripted, "What is 6 times 7?")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("x = 6 * 7") < out.index("42\n") < out.index("Answer: The answer is 42.")
    assert out.rstrip().splitlines()[-1] == "Answer: The answer is 42."
    assert "\033[" not in out  # no colours when stdout is not a terminal
    assert "stored as run 1" in done.stderr
    # The model got the task after the system prompt and worked examples, and stop sequences.
    first = scripted.requests[0]
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1]["content"].startswith("What is 6 times 7?\n\nWrite a Python program")
    assert first["stop"]


def test_json_result_and_history(scripted: ScriptedOpenAIServer, codeloop_home: Path) -> None:
    scripted.replies = [fence("print(sum(range(1, 101)))"), "The sum is 5000."]
    done = scripted_run(scripted, "--json", "Sum of 1 to 100?")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"answer", "steps", "usage", "timings", "status", "id"} <= result.keys()
    assert (result["answer"], result["answer_source"]) == ("5050", "output")  # grounded in the output
    assert result["steps"][0]["result"]["stdout"] == "5050\n"
    assert result["usage"]["calls"] == 2
    assert result["timings"]["total_s"] > 0

    listing = codeloop("history", "list")
    assert listing.returncode == 0
    assert "Sum of 1 to 100?" in listing.stdout
    assert "answered" in listing.stdout
    shown = codeloop("history", "show", str(result["id"]), "--json")
    stored = json.loads(shown.stdout)
    assert stored["kind"] == "run"
    assert stored["turns"][0]["answer"] == "5050"
    text = codeloop("history", "show", str(result["id"]))
    assert "print(sum(range(1, 101)))" in text.stdout
    assert "Answer: 5050" in text.stdout


def test_figures_are_saved_next_to_the_history(scripted: ScriptedOpenAIServer, codeloop_home: Path) -> None:
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nprint('plotted')"
    scripted.replies = [fence(plot), "I plotted it."]
    done = scripted_run(scripted, "Plot squares")
    assert done.returncode == 0, done.stderr
    saved = sorted((codeloop_home / "figures" / "1").glob("*.png"))
    assert len(saved) == 1
    assert saved[0].read_bytes().startswith(b"\x89PNG")
    assert f"figure: {saved[0]}" in done.stdout


def test_exported_notebook_of_a_run_reexecutes(scripted: ScriptedOpenAIServer, tmp_path: Path) -> None:
    scripted.replies = [
        "Let me compute the squares.\n"
        + fence("squares = [n * n for n in range(5)]\nprint(squares)\nsum(squares"),
        fence("squares = [n * n for n in range(5)]\ntotal = sum(squares)\nprint(total)"),
        "The total is 30.",
    ]
    done = scripted_run(scripted, "--json", "Sum the squares of 0..4")
    result = json.loads(done.stdout)
    assert result["steps"][0]["result"]["status"] == "error"  # a syntax error, then a repair
    path = tmp_path / "nb" / "run.ipynb"
    exported = codeloop("history", "export", str(result["id"]), "--ipynb", str(path))
    assert exported.returncode == 0, exported.stderr
    nb = nbformat.read(path, as_version=4)
    assert any(c.cell_type == "markdown" and "Let me compute the squares." in c.source for c in nb.cells)
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0].ename == "SyntaxError"
    assert code[1].outputs[0].text == "30\n"


def test_no_answer_exits_1(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [fence("raise ValueError('nope')")] * 3
    done = scripted_run(scripted, "--max-steps", "2", "fail")
    assert done.returncode == 1
    assert "No answer: stopped: max_steps" in done.stdout


def test_model_server_down_is_a_clear_error(codeloop_home: Path) -> None:
    port = free_port()
    done = codeloop("run", "--model", "x", "--base-url", f"http://127.0.0.1:{port}/v1", "--json", "2+2?")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "aborted"
    assert f"127.0.0.1:{port}" in result["error"]
    assert codeloop("history", "show", str(result["id"]), "--json").returncode == 0


def test_usage_errors_exit_2(scripted: ScriptedOpenAIServer) -> None:
    assert codeloop("run", stdin="").returncode == 2
    assert scripted_run(scripted, "--max-steps", "0", "x").returncode == 2
    assert codeloop("history", "show").returncode == 2
    assert codeloop("history", "export", "1").returncode == 2


def test_task_from_stdin(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [fence("print(2 ** 10)"), "It is 1024."]
    done = subprocess.run(
        [sys.executable, "-m", "codeloop", "run", "--model", "s", "--base-url", scripted.base_url, "-"],
        input="What is 2 to the 10th?\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    assert "Answer: It is 1024." in done.stdout
    assert scripted.requests[0]["messages"][-1]["content"].split("\n\n")[0] == "What is 2 to the 10th?"


def test_ctrl_c_stops_cleanly_and_keeps_the_steps(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = [fence("import time\nprint('started', flush=True)\ntime.sleep(60)")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codeloop", "run", "--model", "s", "--base-url", scripted.base_url, "sleep"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = ""
    while "started" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "No answer: interrupted by the user" in out
    shown = json.loads(codeloop("history", "show", "1", "--json").stdout)
    assert shown["turns"][0]["status"] == "interrupted"


def test_a_corrupt_history_does_not_stop_a_run_and_is_left_alone(
    scripted: ScriptedOpenAIServer, codeloop_home: Path
) -> None:
    codeloop_home.mkdir(parents=True)
    db = codeloop_home / "history.db"
    db.write_bytes(b"garbage" * 1000)
    scripted.replies = [fence("print(1 + 1)"), "It is 2."]
    done = scripted_run(scripted, "1+1?")
    assert done.returncode == 0
    assert "Answer: It is 2." in done.stdout
    assert "history is off for this run" in done.stderr
    assert "corrupt" in done.stderr
    listing = codeloop("history", "list")
    assert listing.returncode == 1
    assert "corrupt" in listing.stderr
    assert "left untouched" in listing.stderr
    assert db.read_bytes() == b"garbage" * 1000


@pytest.mark.model
@pytest.mark.slow
def test_a_real_task_on_the_embedded_model(default_ready: Path) -> None:
    done = codeloop("run", "--json", "What is 17 * 23 + 456?", timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "847" in result["answer"]
    assert any(s["code"] and s["result"]["status"] == "ok" for s in result["steps"])
