"""The agent: the model writes Python, the sandbox runs it, the model repairs and answers.

Public names: :class:`Agent` (the loop), :class:`AgentResult` (what a run returns, JSON-ready),
:class:`Chat` (multi-turn chat), :class:`Limits` and :class:`Strategy` (knobs).
"""

from __future__ import annotations

from codeloop.agent.chat import Chat
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
from codeloop.agent.result import AgentResult, CellOutcome, Figure, Step, TaskStatus, TaskTimings, TaskUsage
from codeloop.agent.settings import Limits, Strategy
from codeloop.text import CodeBlock, find_code_blocks, parse_reply

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentResult",
    "CellOutcome",
    "CellOutput",
    "CellStart",
    "Chat",
    "CodeBlock",
    "EventHandler",
    "Figure",
    "Finished",
    "Limits",
    "ModelStart",
    "ModelText",
    "Notice",
    "Step",
    "StepDone",
    "Strategy",
    "TaskStatus",
    "TaskTimings",
    "TaskUsage",
    "fan_out",
    "find_code_blocks",
    "parse_reply",
]
