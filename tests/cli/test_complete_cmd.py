"""``codeloop complete`` as a real subprocess: the FIM prompt over a server's completions endpoint,
--json, stdin, bad input, a dead server, --serve, and the embedded model end to end (cold and served)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from analyze_complete_server import codeloop, dead_url, scripted_server

from local_servers import LlamaServer, ScriptedOpenAIServer

SOURCE = "import os\n\n\ndef home():\n    return os.environ.get()\n"


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test here runs in its own user dir (tests/conftest.py)."""
    return codeloop_home


@pytest.fixture
def scripted() -> Iterator[ScriptedOpenAIServer]:
    server = scripted_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    f = tmp_path / "m.py"
    f.write_text(SOURCE)
    return f


def test_fim_prompt_through_the_completions_endpoint(src: Path, scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ['"HOME")\n\ndef user():\n']
    before = (src.read_bytes(), src.stat().st_mtime_ns)
    done = codeloop("complete", f"{src}:5:27", "--model", "s", "--base-url", scripted.base_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '"HOME"\n'  # the ")" the file already has is trimmed
    path, body = scripted.paths[0], scripted.requests[0]
    assert path.endswith("/v1/completions") and "suffix" not in body
    assert (
        body["prompt"]
        == "<|fim_prefix|>import os\n\n\ndef home():\n    return os.environ.get(<|fim_suffix|>)\n<|fim_middle|>"
    )
    assert "<|endoftext|>" in body["stop"]
    assert (src.read_bytes(), src.stat().st_mtime_ns) == before


def test_json_and_stdin(scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["a * b\n"]
    done = codeloop("complete", "-", "2:12", "--path", "mul.py", "--json", "--model", "s", "--base-url",
                    scripted.base_url, stdin="def mul(a, b):\n    return \n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (
        data["completion"] == "a * b" and data["path"] == "mul.py" and (data["line"], data["col"]) == (2, 12)
    )
    assert {"raw", "model", "model_seconds", "total_seconds", "time_to_first_token"} <= set(data)
    # the same after "--", in one argument
    scripted.replies = ["a * b\n"]
    again = codeloop("complete", "--json", "--model", "s", "--base-url", scripted.base_url, "--", "-:2:12",
                     stdin="def mul(a, b):\n    return \n")  # fmt: skip
    assert json.loads(again.stdout)["completion"] == "a * b", again.stderr


def test_lines_option(src: Path, scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["\n    x = 1\n    y = 2\n    z = 3\n"]
    f = src.with_name("blank.py")
    f.write_text("def f():\n")
    done = codeloop(
        "complete", f"{f}:1:9", "--lines", "2", "--json", "--model", "s", "--base-url", scripted.base_url
    )
    assert json.loads(done.stdout)["completion"] == "\n    x = 1\n    y = 2"


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("m.py", 2, "expected FILE:LINE:COL"),
        ("m.py:x:1", 2, "must be numbers"),
        ("nope.py:1:1", 1, "no such file"),
        ("m.py:9:1", 1, "line 9 is outside the file"),
        ("m.py:5:99", 1, "column 99 is outside line 5"),
    ],
)
def test_bad_input_is_a_clear_error(src: Path, target: str, code: int, message: str) -> None:
    done = codeloop("complete", target, "--model", "s", "--base-url", dead_url(), cwd=str(src.parent))
    assert done.returncode == code and message in done.stderr and "Traceback" not in done.stderr


def test_dead_server(src: Path) -> None:
    done = codeloop("complete", f"{src}:5:27", "--model", "s", "--base-url", dead_url())
    assert done.returncode == 1 and "codeloop: error:" in done.stderr and "Traceback" not in done.stderr


def test_serve_answers_json_lines(src: Path, scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ['"HOME")\n', "2\n"]
    requests = [
        {"id": 1, "path": str(src), "line": 5, "col": 27},
        "this is not json",
        {"id": 3, "line": 1, "col": 5, "source": "x = \n"},
        {"id": 4, "path": str(src), "line": 50, "col": 1},
        {"id": 5, "source": "x"},
    ]
    stdin = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in requests)
    done = codeloop("complete", "--serve", "--model", "s", "--base-url", scripted.base_url, stdin=stdin)
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert replies[0]["ready"] is True
    assert replies[1]["id"] == 1 and replies[1]["completion"] == '"HOME"'
    assert "error" in replies[2]
    assert replies[3]["id"] == 3 and replies[3]["completion"] == "2"
    assert replies[4]["id"] == 4 and "outside the file" in replies[4]["error"]
    assert replies[5]["id"] == 5 and "integers" in replies[5]["error"]


# --- the embedded model ---


@pytest.fixture
def real_home(default_ready: Path, codeloop_home: Path) -> Path:
    """The test's user dir with the default model assembled in it (tests/conftest.py)."""
    return codeloop_home


@pytest.mark.model
@pytest.mark.slow
def test_embedded_model_cold_and_served(real_home: Path, tmp_path: Path) -> None:
    f = tmp_path / "squares.py"
    f.write_text('def squares(n):\n    """The squares of 0..n-1."""\n    return [i * i for i in range()]\n')
    before = (f.read_bytes(), f.stat().st_mtime_ns)
    env = {"CODELOOP_HOME": str(real_home)}
    done = codeloop("complete", f"{f}:3:34", "--json", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    cold = json.loads(done.stdout)
    assert cold["model"] == "qwen-coder-0.5b" and cold["completion"].strip() == "n", cold
    stdin = json.dumps({"id": "a", "path": str(f), "line": 3, "col": 34}) + "\n"
    stdin += (
        json.dumps({"id": "b", "source": "def add(a, b):\n    return a + \n", "line": 2, "col": 16}) + "\n"
    )
    served = codeloop("complete", "--serve", stdin=stdin, env=env, timeout=300)
    assert served.returncode == 0, served.stderr
    replies = [json.loads(line) for line in served.stdout.splitlines()]
    assert replies[0]["ready"] and replies[1]["completion"] == cold["completion"]  # same answer warm and cold
    assert replies[2]["completion"].strip() == "b", replies[2]
    assert (f.read_bytes(), f.stat().st_mtime_ns) == before


@pytest.mark.model
@pytest.mark.slow
def test_a_real_llama_cpp_server_gets_the_same_template(real_home: Path, tmp_path: Path) -> None:
    """llama-cpp-python's server tokenises a suffix-less /v1/completions prompt with special tokens,
    so the FIM markers reach the model as markers: the answer matches the embedded one."""
    gguf = next((real_home / "models").glob("*.gguf"))
    server = LlamaServer(gguf, tmp_path / "server.log")
    try:
        server.wait_ready(timeout=120)
        base = server.base_url
        f = tmp_path / "squares.py"
        f.write_text(
            'def squares(n):\n    """The squares of 0..n-1."""\n    return [i * i for i in range()]\n'
        )
        env = {"CODELOOP_HOME": str(real_home)}
        remote = codeloop("complete", f"{f}:3:34", "--json", "--model", "local", "--base-url", base, env=env)
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout)["completion"].strip() == "n", remote.stdout
    finally:
        server.stop()
