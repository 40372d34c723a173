"""The agent: the model writes Python, the sandbox runs it, the model repairs and answers.

Public names: :class:`Agent` (the loop), :class:`AgentResult` (what a run returns, JSON-ready),
:class:`Conversation` (multi-turn chat), :class:`Limits` and :class:`Strategy` (knobs).
"""

from __future__ import annotations

from codeloop.agent.chat import Conversation
from codeloop.agent.events import (
    AgentEvent,
    CellOutput,
    CellStart,
    EventHandler,
    Finished,
    ModelStart,
    ModelText,
    Notice,
    StepDone,
    fan_out,
)
from codeloop.agent.loop import Agent
from codeloop.agent.parsing import CodeBlock, find_code_blocks, parse_reply
from codeloop.agent.result import AgentResult, CellOutcome, Figure, RunStatus, Step, Timings, Usage
from codeloop.agent.settings import Limits, Strategy

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentResult",
    "CellOutcome",
    "CellOutput",
    "CellStart",
    "CodeBlock",
    "Conversation",
    "EventHandler",
    "Figure",
    "Finished",
    "Limits",
    "ModelStart",
    "ModelText",
    "Notice",
    "RunStatus",
    "Step",
    "StepDone",
    "Strategy",
    "Timings",
    "Usage",
    "fan_out",
    "find_code_blocks",
    "parse_reply",
]
