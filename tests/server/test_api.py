"""The HTTP API against a real server on 127.0.0.1: sessions, auth, limits, tasks, history."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import nbformat
import pytest
from server_helpers import LiveServer

from local_servers import ScriptedOpenAIServer

A, B = "token-alpha-123", "token-bravo-456"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into its events (``type`` plus the data object)."""
    events = []
    for block in response.text.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        name = next(line[6:].strip() for line in lines if line.startswith("event:"))
        data = json.loads("\n".join(line[5:].strip() for line in lines if line.startswith("data:")))
        assert data["type"] == name
        events.append(data)
    return events


def test_health_page_and_openapi(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/healthz").json()["ok"] is True
        page = client.get("/")
        assert page.status_code == 200 and "<title>codeloop</title>" in page.text
        assert client.get("/static/app.js").status_code == 200
        schema = client.get("/openapi.json").json()
        for path in ("/v1/sessions", "/v1/sessions/{session_id}/run", "/v1/sessions/{session_id}",
                     "/v1/tasks", "/v1/history", "/v1/history/{conversation_id}", "/healthz"):  # fmt: skip
            assert path in schema["paths"], path


def test_a_session_keeps_state_returns_exec_results_and_figures(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        created = client.post("/v1/sessions", json={"timeout": 20})
        assert created.status_code == 201
        sid = created.json()["id"]
        assert client.post(f"/v1/sessions/{sid}/run", json={"code": "x = 6"}).json()["status"] == "ok"
        result = client.post(f"/v1/sessions/{sid}/run", json={"code": "print('hi')\nx * 7"}).json()
        assert result["status"] == "ok" and result["stdout"] == "hi\n" and result["value"] == "42"
        # the same object as `codeloop exec --json` prints, key for key
        done = subprocess.run([sys.executable, "-m", "codeloop", "exec", "--json", "-c", "1"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert set(result) == set(json.loads(done.stdout))
        figure = client.post(
            f"/v1/sessions/{sid}/run",
            json={"code": "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])"},
        ).json()
        assert figure["status"] == "ok" and len(figure["figures"]) == 1
        assert base64.b64decode(figure["figures"][0]).startswith(b"\x89PNG\r\n\x1a\n")
        error = client.post(f"/v1/sessions/{sid}/run", json={"code": "1/0"}).json()
        assert error["status"] == "error" and error["error"]["ename"] == "ZeroDivisionError"
        assert "1/0" in error["error"]["traceback"]
        info = client.get(f"/v1/sessions/{sid}").json()
        assert info["runs"] == 4 and info["network"] is False and info["timeout"] == 20
        assert [s["id"] for s in client.get("/v1/sessions").json()] == [sid]
        assert client.delete(f"/v1/sessions/{sid}").status_code == 204
        gone = client.post(f"/v1/sessions/{sid}/run", json={"code": "x"})
        assert gone.status_code == 404 and "no session" in gone.json()["detail"]
        assert client.get(f"/v1/sessions/{sid}").status_code == 404
        assert client.delete(f"/v1/sessions/{sid}").status_code == 404
        assert client.post("/v1/sessions/never-made/run", json={"code": "1"}).status_code == 404


def test_a_timeout_restarts_the_session_and_it_goes_on(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        sid = client.post("/v1/sessions", json={}).json()["id"]
        client.post(f"/v1/sessions/{sid}/run", json={"code": "y = 1"})
        slow = client.post(f"/v1/sessions/{sid}/run", json={"code": "while True: pass", "timeout": 1}).json()
        assert slow["status"] == "timeout" and slow["restarted"] is True
        after = client.post(f"/v1/sessions/{sid}/run", json={"code": "'y' in globals()"}).json()
        assert after["status"] == "ok" and after["value"] == "False"


def test_bad_requests_are_clear_errors(serve: Callable[..., LiveServer]) -> None:
    server = serve(max_cell_timeout=60)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/v1/sessions", json={"timeout": 600}).status_code == 400
        assert client.post("/v1/sessions", json={"timeout": -1}).status_code == 400
        refused = client.post("/v1/sessions", json={"network": True})
        assert refused.status_code == 400 and "--allow-network" in refused.json()["detail"]
        sid = client.post("/v1/sessions", json={}).json()["id"]
        assert client.post(f"/v1/sessions/{sid}/run", json={}).status_code == 422
        assert client.post(f"/v1/sessions/{sid}/run", json={"code": "1", "timeout": 99}).status_code == 400
        assert client.post(f"/v1/sessions/{sid}/run", content=b"{not json").status_code == 422
        assert (
            client.post("/v1/tasks", json={"task": "2+2", "model": "gguf:/etc/hostname"}).status_code == 400
        )


def test_tokens_are_required_and_owners_are_isolated(serve: Callable[..., LiveServer]) -> None:
    server = serve(tokens=[A, B])
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/healthz").status_code == 200  # liveness needs no token
        assert client.get("/healthz").json()["token_required"] is True
        assert client.post("/v1/sessions", json={}).status_code == 401
        wrong = client.post("/v1/sessions", json={}, headers=auth("not-the-token"))
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/sessions", json={}, headers={"Authorization": A}).status_code == 401
        assert client.get("/v1/history", headers=auth("x" * 20)).status_code == 401
        sid = client.post("/v1/sessions", json={}, headers=auth(A)).json()["id"]
        assert (
            client.post(f"/v1/sessions/{sid}/run", json={"code": "s = 'alpha'"}, headers=auth(A)).status_code
            == 200
        )
        # B cannot see, run in, or delete A's session: to B it does not exist
        assert client.get(f"/v1/sessions/{sid}", headers=auth(B)).status_code == 404
        assert client.post(f"/v1/sessions/{sid}/run", json={"code": "s"}, headers=auth(B)).status_code == 404
        assert client.delete(f"/v1/sessions/{sid}", headers=auth(B)).status_code == 404
        assert client.get("/v1/sessions", headers=auth(B)).json() == []
        assert (
            client.post(f"/v1/sessions/{sid}/run", json={"code": "s"}, headers=auth(A)).json()["value"]
            == "'alpha'"
        )


def test_other_sites_cannot_reach_a_local_server_through_a_browser(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    port = server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        # a page of another site posting to the local server
        cross = client.post("/v1/sessions", json={}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403 and "another origin" in cross.json()["detail"]
        # a DNS-rebinding page: same origin as far as the browser knows, but not a loopback host name
        rebound = client.post("/v1/sessions", json={}, headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 403 and "DNS rebinding" in rebound.json()["detail"]
        same = {"Origin": f"http://127.0.0.1:{port}"}
        assert client.post("/v1/sessions", json={}, headers=same).status_code == 201
        assert client.get("/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200
        assert len(server.state.sessions) == 1


def test_the_session_cap_answers_429(serve: Callable[..., LiveServer]) -> None:
    server = serve(max_sessions=2)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        first = client.post("/v1/sessions", json={}).json()["id"]
        client.post("/v1/sessions", json={})
        full = client.post("/v1/sessions", json={})
        assert full.status_code == 429 and "2 live sessions" in full.json()["detail"]
        client.delete(f"/v1/sessions/{first}")
        assert client.post("/v1/sessions", json={}).status_code == 201


def test_one_token_cannot_take_every_session(serve: Callable[..., LiveServer]) -> None:
    server = serve(tokens=[A, B], max_sessions=4, max_sessions_per_token=2)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(2):
            assert client.post("/v1/sessions", json={}, headers=auth(A)).status_code == 201
        third = client.post("/v1/sessions", json={}, headers=auth(A))
        assert third.status_code == 429 and "one token may" in third.json()["detail"]
        assert client.post("/v1/sessions", json={}, headers=auth(B)).status_code == 201


def test_idle_sessions_are_reaped(serve: Callable[..., LiveServer]) -> None:
    server = serve(idle_timeout=1.0)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        idle = client.post("/v1/sessions", json={}).json()["id"]
        busy = client.post("/v1/sessions", json={}).json()["id"]
        # a cell running longer than the idle timeout is not idle: it is never reaped mid-run
        slow = client.post(f"/v1/sessions/{busy}/run", json={"code": "import time; time.sleep(2.5); 'done'"})
        assert slow.json()["value"] == "'done'"
        deadline = time.monotonic() + 10
        while client.get(f"/v1/sessions/{idle}").status_code == 200:
            assert time.monotonic() < deadline, "the idle session was never reaped"
            time.sleep(0.2)
        assert client.post(f"/v1/sessions/{idle}/run", json={"code": "1"}).status_code == 404


def test_request_bodies_are_capped(serve: Callable[..., LiveServer]) -> None:
    server = serve(max_body=2000)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        sid = client.post("/v1/sessions", json={}).json()["id"]
        big = client.post(f"/v1/sessions/{sid}/run", json={"code": "x = '" + "a" * 5000 + "'"})
        assert big.status_code == 413 and "2000 bytes" in big.json()["detail"]

        def chunks() -> Any:  # no Content-Length: the cap holds while reading
            for _ in range(10):
                yield b" " * 500

        streamed = client.post(f"/v1/sessions/{sid}/run", content=chunks(),
                               headers={"Content-Type": "application/json"})  # fmt: skip
        assert streamed.status_code == 413
        assert client.post(f"/v1/sessions/{sid}/run", json={"code": "1"}).json()["value"] == "1"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_shutdown_closes_every_sandbox(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        ids = [client.post("/v1/sessions", json={}).json()["id"] for _ in range(3)]
        pids = [server.state.sessions.get("local", sid).sandbox.pid for sid in ids]
        dirs = [server.state.sessions.get("local", sid).sandbox.workdir for sid in ids]
        assert all(_alive(p) for p in pids)
        # one of them is busy with a long cell when the server stops
        url = f"{server.url}/v1/sessions/{ids[0]}/run"
        sleeper = {"code": "import time; time.sleep(60)"}
        threading.Thread(target=lambda: httpx.post(url, json=sleeper, timeout=90), daemon=True).start()
        time.sleep(0.5)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 30
    assert len(server.state.sessions) == 0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    assert not any(d.exists() for d in dirs)


def test_a_task_streams_its_events_and_lands_in_the_history(
    serve: Callable[..., LiveServer], scripted: ScriptedOpenAIServer
) -> None:
    scripted.replies = [
        "I'll compute it.\n```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nprint(6 * 7)\n```",
        "The answer is 42.",
    ]
    server = serve(model="scripted", base_url=scripted.base_url)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        response = client.post("/v1/tasks", json={"task": "What is 6 times 7?"})
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        events = sse_events(response)
        types = [e["type"] for e in events]
        assert types[0] == "start" and types[-1] == "done"
        assert types.index("model_start") < types.index("text") < types.index("cell") < types.index("step")
        text = "".join(e["text"] for e in events if e["type"] == "text")
        assert "I'll compute it." in text and "The answer is 42." in text
        cell = next(e for e in events if e["type"] == "cell")
        assert "print(6 * 7)" in cell["code"]
        assert "42\n" in "".join(e["text"] for e in events if e["type"] == "output")
        step = next(e for e in events if e["type"] == "step")["step"]
        assert step["result"]["status"] == "ok"
        assert base64.b64decode(step["figures"][0]).startswith(b"\x89PNG")
        result = events[-1]["result"]
        assert result["ok"] is True and "42" in result["answer"]
        run_id = events[0]["id"]
        assert result["id"] == run_id

        listed = client.get("/v1/history").json()
        assert [r["id"] for r in listed] == [run_id] and listed[0]["last_status"] == "answered"
        shown = client.get(f"/v1/history/{run_id}").json()
        assert shown["turns"][0]["answer"] == result["answer"]
        assert base64.b64decode(shown["turns"][0]["steps"][0]["figures"][0]).startswith(b"\x89PNG")
        notebook = client.get(f"/v1/history/{run_id}.ipynb")
        assert notebook.status_code == 200
        nb = nbformat.reads(notebook.text, as_version=4)
        nbformat.validate(nb)
        assert any(c.cell_type == "code" and "print(6 * 7)" in c.source for c in nb.cells)
        assert client.get("/v1/history/999").status_code == 404
        assert client.get("/v1/history/999.ipynb").status_code == 404


def test_an_unreadable_history_is_a_clear_500_and_left_alone(
    serve: Callable[..., LiveServer], codeloop_home: Any
) -> None:
    codeloop_home.mkdir(parents=True, exist_ok=True)
    db = codeloop_home / "history.db"
    db.write_bytes(b"garbage" * 1000)
    server = serve()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        listed = client.get("/v1/history")
        assert listed.status_code == 500 and "history" in listed.json()["detail"]
    assert db.read_bytes() == b"garbage" * 1000


def test_history_is_per_token(serve: Callable[..., LiveServer], scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["```python\nprint(2 + 2)\n```", "4"]
    server = serve(tokens=[A, B], model="scripted", base_url=scripted.base_url)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        events = sse_events(client.post("/v1/tasks", json={"task": "2 + 2?"}, headers=auth(A)))
        run_id = events[-1]["result"]["id"]
        assert [r["id"] for r in client.get("/v1/history", headers=auth(A)).json()] == [run_id]
        assert client.get("/v1/history", headers=auth(B)).json() == []
        assert client.get(f"/v1/history/{run_id}", headers=auth(B)).status_code == 404
        assert client.post("/v1/tasks", json={"task": "2 + 2?"}).status_code == 401


def test_stopping_a_task_ends_it_and_its_cell(
    serve: Callable[..., LiveServer], scripted: ScriptedOpenAIServer
) -> None:
    scripted.replies = ["```python\nimport time\nprint('sleeping', flush=True)\ntime.sleep(120)\n```"]
    server = serve(model="scripted", base_url=scripted.base_url)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        with client.stream("POST", "/v1/tasks", json={"task": "Sleep for two minutes"}) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and '"type": "output"' in line:
                    break  # the client leaves mid-cell, as the stop button does
            else:
                raise AssertionError("the cell never ran")
        deadline = time.monotonic() + 15
        while server.state.tasks and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not server.state.tasks, "the task kept running after the client left"
        deadline = time.monotonic() + 15
        while True:
            runs = client.get("/v1/history").json()
            if runs and runs[0]["last_status"] != "running":
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.2)
        assert runs[0]["last_status"] == "interrupted"


def test_the_task_cap_answers_429(serve: Callable[..., LiveServer], scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["```python\nimport time\nprint('busy', flush=True)\ntime.sleep(60)\n```"]
    server = serve(model="scripted", base_url=scripted.base_url, max_tasks=1)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        with client.stream("POST", "/v1/tasks", json={"task": "Be busy"}) as response:
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data:") and '"type": "output"' in line:
                    break  # the cell is running
            else:
                raise AssertionError("the cell never ran")
            second = client.post("/v1/tasks", json={"task": "Another one"})
            if second.status_code != 429:  # say why the first task was over already
                raise AssertionError(f"{second.status_code}; the first task went on with: {list(lines)[-6:]}")
            assert "1 tasks are already running" in second.json()["detail"]
        empty = client.post("/v1/tasks", json={"task": "   "})
        assert empty.status_code == 400 and "the task is empty" in empty.json()["detail"]


def test_serve_refuses_a_public_address_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CODELOOP_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "codeloop", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 2 and "refusing to bind 0.0.0.0 without a token" in done.stderr
    short = subprocess.run([sys.executable, "-m", "codeloop", "serve", "--host", "0.0.0.0", "--token", "abc"],
                           capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert short.returncode == 2 and "at least 8 characters" in short.stderr


@pytest.mark.slow
def test_codeloop_serve_runs_and_stops_cleanly_on_sigint() -> None:
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "codeloop", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "codeloop serve: http://127.0.0.1:" in line, line
        url = line.split()[2].rstrip("/")
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/healthz").status_code == 200
            sid = client.post("/v1/sessions", json={}).json()["id"]
            assert client.post(f"/v1/sessions/{sid}/run", json={"code": "2**10"}).json()["value"] == "1024"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert "every sandbox session is closed" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
