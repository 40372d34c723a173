"""Pure host-side pieces: frames and bounded output (no processes)."""

from __future__ import annotations

import json

import pytest

from codeloop.sandbox.output import BoundedOutput
from codeloop.sandbox.protocol import FrameReader, ProtocolError, encode_frame
from codeloop.sandbox.result import ErrorInfo, RunResult, RunStatus


def test_frames_round_trip_in_arbitrary_pieces() -> None:
    data = encode_frame({"id": "a", "n": 1}) + encode_frame({"id": "b", "text": "é\n"})
    reader = FrameReader()
    frames = []
    for i in range(len(data)):
        frames += reader.feed(data[i : i + 1])
    assert frames == [{"id": "a", "n": 1}, {"id": "b", "text": "é\n"}]
    assert reader.pending == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((1 << 30).to_bytes(4, "big"), "limit"),
        ((3).to_bytes(4, "big") + b"{{{", "not JSON"),
        ((2).to_bytes(4, "big") + b"[]", "not a JSON object"),
    ],
)
def test_bad_frames_are_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        FrameReader().feed(data)


def test_output_within_the_limit_is_exact() -> None:
    out = BoundedOutput("stdout", 100)
    assert out.feed(b"hello ") == "hello "
    assert out.feed("wörld".encode()[:2]) == "w"  # a split UTF-8 character waits for its second byte
    out.feed("wörld".encode()[2:])
    assert out.text() == "hello wörld" and not out.truncated


def test_output_over_the_limit_keeps_head_and_tail_and_marks_the_gap() -> None:
    out = BoundedOutput("stderr", 100)
    live = "".join(out.feed(f"{i:04d}\n".encode()) for i in range(1000))
    text = out.text()
    assert out.truncated and out.total == 5000 and out.dropped == 5000 - 100
    assert text.startswith("0000\n") and text.endswith("0999\n")
    assert "4900 bytes of stderr omitted" in text
    assert "live output stops here" in live and "0999" not in live


def test_invalid_utf8_becomes_replacement_characters() -> None:
    out = BoundedOutput("stdout", 100)
    out.feed(b"a\xffb")
    assert out.text() == "a\ufffdb"


def test_result_to_dict_is_json_ready() -> None:
    result = RunResult(
        status=RunStatus.ERROR,
        error=ErrorInfo("ValueError", "bad", "Traceback ...\nValueError: bad\n"),
        figures=[b"\x89PNG\r\n\x1a\n"],
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["status"] == "error" and data["error"]["ename"] == "ValueError"
    assert data["figures"] == ["iVBORw0KGgo="]
    assert result.to_dict(figure_paths=["/tmp/f.png"])["figures"] == ["/tmp/f.png"]


def test_a_run_request_carries_any_source_exactly() -> None:
    from codeloop.sandbox.protocol import decode_run_request, encode_limits, encode_run_request

    code = 'print("é\\u2028\\x00")\n\t"""quotes"""\udc80 \U0001f600' + "é" * 70_000
    frame = encode_run_request("0123456789abcdef", code, 7, encode_limits(10, 3, 2))
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_run_request(frame[4:]) == {
        "op": "r", "id": "0123456789abcdef", "code": code, "cell": 7, "max_repr": 10, "max_figures": 3, "max_files": 2,
    }


def test_a_cell_too_big_for_a_frame_is_refused_before_sending() -> None:
    from codeloop.sandbox.protocol import MAX_CODE_BYTES, encode_limits, encode_run_request

    with pytest.raises(ValueError, match="byte limit"):
        encode_run_request("0123456789abcdef", "x" * (MAX_CODE_BYTES + 1), 1, encode_limits(1, 1, 1))


def test_trailing_garbage_after_a_frames_json_is_rejected() -> None:
    body = b'{"id": 1} {}'
    with pytest.raises(ProtocolError, match="after its JSON"):
        FrameReader().feed(len(body).to_bytes(4, "big") + body)
