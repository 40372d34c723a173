"""AgentResult is plain data that survives a JSON round trip."""

from __future__ import annotations

import json

from codeloop.agent.result import AgentResult, CellOutcome, Figure, Step, TaskStatus, TaskTimings, TaskUsage


def test_json_round_trip_keeps_everything_but_figure_bytes() -> None:
    result = AgentResult(
        task="t",
        model="m",
        status=TaskStatus.ANSWERED,
        answer="4",
        answer_source="output",
        evidence="4",
        steps=[
            Step(
                0, "```python\nprint(4)\n```", "print(4)", CellOutcome("ok", stdout="4\n", files=["a"]), "obs"
            ),
            Step(1, "It is 4.", figures=[Figure(png=b"png", path="/tmp/f.png")]),
        ],
        usage=TaskUsage(10, 5, 2),
        timings=TaskTimings(1.0, 0.5, 0.25),
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert {"answer", "steps", "usage", "timings"} <= data.keys()
    assert data["usage"]["total_tokens"] == 15
    back = AgentResult.from_dict(data)
    assert back.ok
    assert back.answer == "4"
    assert back.status is TaskStatus.ANSWERED
    assert back.steps[0].outcome == result.steps[0].outcome
    assert back.steps[1].figures[0].path == "/tmp/f.png"
    assert back.steps[1].figures[0].png is None
    assert back.to_dict() == data


def test_only_answered_runs_are_ok() -> None:
    assert not AgentResult("t", status=TaskStatus.MAX_STEPS, answer=None).ok
    assert not AgentResult("t", status=TaskStatus.ANSWERED, answer=None).ok
