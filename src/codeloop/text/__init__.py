"""Neutral text helpers: reading a model's reply (its code blocks) and formatting text for display.

Every layer may use them (the agent, the eval harness, the history, notebooks, the command
line); they import nothing of codeloop's.
"""

from __future__ import annotations

from codeloop.text.format import MAX_TRACEBACK_LINES, fence, trim_middle, trim_traceback
from codeloop.text.replies import (
    CodeBlock,
    ParsedReply,
    cut_after_first_block,
    find_code_blocks,
    looks_like_bare_code,
    parse_reply,
)

__all__ = [
    "MAX_TRACEBACK_LINES",
    "CodeBlock",
    "ParsedReply",
    "cut_after_first_block",
    "fence",
    "find_code_blocks",
    "looks_like_bare_code",
    "parse_reply",
    "trim_middle",
    "trim_traceback",
]
