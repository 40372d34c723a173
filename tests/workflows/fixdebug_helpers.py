"""Helpers for the fix and debug tests: a scripted fake model (loop logic only), tiny projects on disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from codeloop.llm.base import Model
from codeloop.llm.types import Chunk, FinishReason, Request

Script = str | BaseException | Callable[[str], str]


class FakeModel(Model):
    """Replies from a script (a string, an exception, or a function of the last user message)."""

    name = "fake-model"

    def __init__(self, *replies: Script) -> None:
        self.replies = list(replies)
        self.requests: list[Request] = []

    def execute(self, request: Request) -> Iterator[Chunk]:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError("the fake model ran out of scripted replies")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        prompt = request.messages[-1]["content"] if request.messages else ""
        text = reply(prompt) if callable(reply) else reply
        yield Chunk(text=text)
        yield Chunk(finish_reason=FinishReason.STOP)

    @property
    def prompts(self) -> list[str]:
        return [r.messages[-1]["content"] for r in self.requests if r.messages]


def fenced(code: str) -> str:
    return f"Here is the fix:\n```python\n{code.strip()}\n```\n"


def make_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def state(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime (ns) of every file under root: what 'untouched' is checked against."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            out[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


SEARCH = '''\
def find(items, target):
    """Index of target in the sorted list items, or -1."""
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid
        else:
            hi = mid - 1
    return -1
'''

SEARCH_FIXED = '''\
def find(items, target):
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
'''

SEARCH_TESTS = '''\
from search import find


def test_found():
    assert find([1, 3, 5, 7, 9], 7) == 3


def test_missing():
    assert find([1, 3, 5], 4) == -1
'''

ADD = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return add(x, x)\n"
ADD_TESTS = (
    "from calc import add, double\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_double():\n    assert double(4) == 8\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
)


def new_search_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj", {"search.py": SEARCH, "tests/test_search.py": SEARCH_TESTS})


def new_calc_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "calc", {"calc.py": ADD, "test_calc.py": ADD_TESTS})
