"""Stop sequences across streamed pieces: never show a stop sequence or a piece of one."""

from __future__ import annotations

from codeloop.llm.stops import StopMatcher


def run(stops: list[str], pieces: list[str]) -> tuple[list[str], str, bool]:
    m = StopMatcher(stops)
    shown = [m.feed(p) for p in pieces]
    return shown, "".join(shown) + m.flush(), m.stopped


def test_no_stops_passes_everything_through_at_once() -> None:
    shown, text, stopped = run([], ["ab", "c`", "``"])
    assert shown == ["ab", "c`", "``"]
    assert text == "abc```"
    assert not stopped


def test_stop_inside_one_piece() -> None:
    _, text, stopped = run(["END"], ["hello END world"])
    assert text == "hello "
    assert stopped


def test_stop_straddling_pieces_is_held_back_then_dropped() -> None:
    shown, text, stopped = run(["```"], ["code", "``", "`", "more"])
    assert shown == ["code", "", "", ""]
    assert text == "code"
    assert stopped


def test_partial_match_is_released_when_it_does_not_complete() -> None:
    shown, text, stopped = run(["```"], ["a`", "`b"])
    assert shown == ["a", "``b"]
    assert text == "a``b"
    assert not stopped


def test_held_tail_is_flushed_at_the_end() -> None:
    shown, text, stopped = run(["\n\n"], ["line", "\n"])
    assert shown == ["line", ""]
    assert text == "line\n"
    assert not stopped


def test_earliest_of_several_stops_wins() -> None:
    _, text, stopped = run(["world", "lo"], ["hello world"])
    assert text == "hel"
    assert stopped


def test_nothing_after_a_stop() -> None:
    m = StopMatcher(["X"])
    assert m.feed("aXb") == "a"
    assert m.feed("more") == ""
    assert m.flush() == ""
