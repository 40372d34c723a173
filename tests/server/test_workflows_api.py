"""``POST /v1/analyze``, ``/v1/complete`` and ``/v1/fix`` on a real server: each route calls its workflow.

A route exists only where its workflow (``codeloop.workflows.*``) is installed; each test skips
when its workflow is absent from this tree.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import httpx
import pytest
from server_helpers import LiveServer

from codeloop.server.workflow_routes import available_workflows
from local_servers import ScriptedOpenAIServer


def needs(workflow: str) -> pytest.MarkDecorator:
    try:
        present = importlib.util.find_spec(f"codeloop.workflows.{workflow}") is not None
    except ModuleNotFoundError:
        present = False
    return pytest.mark.skipif(not present, reason=f"codeloop.workflows.{workflow} is not in this tree")


BUGGY = "def mean(xs):\n    return sum(xs) / (len(xs) - 1)\n"
TEST = "from stats import mean\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n"


def test_only_installed_workflows_have_routes(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for name in ("analyze", "complete", "fix"):
        assert (f"/v1/{name}" in paths) == (name in available_workflows())


@needs("analyze")
def test_analyze_reports_findings_of_the_files_sent(serve: Callable[..., LiveServer]) -> None:
    server = serve(tokens=["token-alpha-123"])
    auth = {"Authorization": "Bearer token-alpha-123"}
    source = "import os\n\n\ndef f(x):\n    if x == None:\n        return eval(x)\n"
    with httpx.Client(base_url=server.url, timeout=120) as client:
        assert client.post("/v1/analyze", json={"files": {"m.py": source}}).status_code == 401
        report = client.post("/v1/analyze", json={"files": {"pkg/m.py": source}}, headers=auth)
        assert report.status_code == 200, report.text
        data = report.json()
        assert data["findings"] and all(not f["path"].startswith("/") for f in data["findings"])
        assert any(f["path"] == "pkg/m.py" for f in data["findings"])
        assert "codeloop-request-" not in report.text  # the server's directory never shows
        bad = client.post("/v1/analyze", json={"files": {"../escape.py": "x = 1\n"}}, headers=auth)
        assert bad.status_code == 400 and "relative" in bad.json()["detail"]
        assert client.post("/v1/analyze", json={"files": {}}, headers=auth).status_code == 400


@needs("fix")
def test_fix_repairs_the_files_sent(serve: Callable[..., LiveServer], scripted: ScriptedOpenAIServer) -> None:
    scripted.replies = ["```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```"] * 6
    server = serve(model="scripted", base_url=scripted.base_url)
    with httpx.Client(base_url=server.url, timeout=300) as client:
        answer = client.post(
            "/v1/fix", json={"files": {"stats.py": BUGGY, "test_stats.py": TEST}, "rounds": 2}
        )
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["fixed"] is True and "+    return sum(xs) / len(xs)" in data["diff"]
        assert "codeloop-request-" not in answer.text


@needs("complete")
@pytest.mark.model
def test_complete_at_a_cursor(serve: Callable[..., LiveServer]) -> None:
    server = serve(model="smollm2-135m")
    source = "def add(a, b):\n    return \n"
    with httpx.Client(base_url=server.url, timeout=300) as client:
        answer = client.post("/v1/complete", json={"source": source, "line": 2, "col": 11})
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert isinstance(data["completion"], str) and data["line"] == 2 and data["col"] == 11
        outside = client.post("/v1/complete", json={"source": source, "line": 40, "col": 0})
        assert outside.status_code == 400
