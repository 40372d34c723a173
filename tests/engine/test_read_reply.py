"""Reading a reply: the workflow's end rule, the repetition cutter, the deadline, closing the stream."""

from __future__ import annotations

import time
from collections.abc import Iterator

from codeloop.engine import read_reply
from codeloop.llm.types import FinishReason, Reply, Timings, Usage


class Stream:
    """A scripted reply in fixed chunks, with the backend's ``reply`` at the end; records closing."""

    def __init__(self, text: str, chunk: int = 3, delay: float = 0.0) -> None:
        self.text, self.chunk, self.delay = text, chunk, delay
        self.sent = 0
        self.closed = False
        self.reply: Reply | None = None
        self._it = self._chunks()

    def _chunks(self) -> Iterator[str]:
        while self.sent < len(self.text):
            time.sleep(self.delay)
            piece = self.text[self.sent : self.sent + self.chunk]
            self.sent += len(piece)
            yield piece

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        self.closed = True
        usage = Usage(prompt_tokens=11, completion_tokens=self.sent // self.chunk)
        finish = FinishReason.STOP if self.sent == len(self.text) else FinishReason.CANCELLED
        self.reply = Reply(self.text[: self.sent], usage, Timings(0.0, 0.0), finish, "scripted")


def test_a_whole_reply_with_the_backends_counts() -> None:
    stream = Stream("print(1)\n")
    gen = read_reply(stream)
    assert gen.text == "print(1)\n"
    assert gen.finish_reason == "stop"
    assert (gen.prompt_tokens, gen.completion_tokens) == (11, 3)
    assert stream.closed


def test_the_end_rule_cuts_the_reply_and_stops_generating() -> None:
    stream = Stream("abc END and then much more text that is never generated")
    shown: list[str] = []
    gen = read_reply(stream, end=lambda text, piece: i + 3 if (i := text.find("END")) >= 0 else None, on_text=shown.append)
    assert gen.text == "abc END"
    assert gen.finish_reason == "cut"
    assert "".join(shown) == "abc END"  # nothing past the cut was shown
    assert stream.sent < len(stream.text)
    assert stream.closed


def test_a_looping_reply_is_cut_short() -> None:
    stream = Stream("x = 1\n" + "print(f('sky'))\n" * 200)
    gen = read_reply(stream)
    assert gen.finish_reason == "repetition"
    assert stream.sent < len(stream.text)
    assert gen.text.count("print(f('sky'))") < 20


def test_the_deadline_stops_a_slow_reply() -> None:
    stream = Stream("word " * 100, chunk=5, delay=0.01)
    gen = read_reply(stream, deadline=time.monotonic() + 0.1)
    assert gen.finish_reason == "deadline"
    assert 0 < len(gen.text) < len(stream.text)


def test_without_a_backend_reply_each_chunk_counts_as_a_token() -> None:
    gen = read_reply(iter(["ab", "cd", "ef"]))
    assert (gen.text, gen.completion_tokens, gen.prompt_tokens) == ("abcdef", 3, 0)
