"""The OpenAI-compatible backend against real servers on 127.0.0.1.

llama-cpp-python's own server (with SmolLM2) covers the happy paths and a crash mid-reply;
small stdlib HTTP servers play the misbehaving ones (slow, stalled, 5xx, 429, 401, 404).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from codeloop.errors import ModelError
from codeloop.llm import FinishReason, get_model
from codeloop.llm.openai_backend import OpenAIModel
from local_servers import HttpServerThread, LlamaServer, free_port

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

COUNT = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]
STORY = [{"role": "user", "content": "Write a long story about a cat who learns to sail."}]


# -- the real llama.cpp server -------------------------------------------------------------------


def test_stream_and_complete_agree(llama_server: LlamaServer) -> None:
    m = get_model("openai:smollm", base_url=llama_server.base_url)
    # Warm the server's prompt cache first: greedy decoding is only bit-identical between calls
    # that find the KV cache in the same state (batch sizes change the float rounding).
    m.complete(STORY, max_tokens=12)
    s = m.stream(STORY, max_tokens=12)
    chunks = list(s)
    assert len(chunks) > 1  # really streamed, not one blob
    assert s.reply is not None
    assert s.reply.finish_reason is FinishReason.LENGTH
    reply = m.complete(STORY, max_tokens=12)
    assert reply.text == "".join(chunks)
    assert reply.usage.prompt_tokens is not None
    assert reply.usage.prompt_tokens > 10
    assert reply.usage.completion_tokens == 12
    assert reply.finish_reason is FinishReason.LENGTH
    ttft = s.reply.timings.time_to_first_token
    assert ttft is not None
    assert 0 < ttft <= s.reply.timings.total


def test_stop_sequences(llama_server: LlamaServer) -> None:
    m = get_model("openai:smollm", base_url=llama_server.base_url)
    m.complete(STORY, max_tokens=24)  # same cache state for the calls we compare (see above)
    full = m.complete(STORY, max_tokens=24).text
    assert len(full) > 12
    stop = full[8:11]
    cut = full[: full.index(stop)]
    reply = m.complete(STORY, max_tokens=24, stop=[stop])
    assert reply.text == cut
    assert reply.finish_reason is FinishReason.STOP
    assert "".join(m.stream(STORY, max_tokens=24, stop=[stop])) == cut


def test_raw_completion_goes_to_the_completions_endpoint(llama_server: LlamaServer) -> None:
    m = get_model("openai:smollm", base_url=llama_server.base_url)
    reply = m.complete_text("def add(a, b):\n    return", max_tokens=6)
    assert reply.text
    assert reply.usage.completion_tokens is not None
    assert "".join(m.stream_text("def add(a, b):\n    return", max_tokens=6)) == reply.text


def test_model_name_is_discovered_from_the_server(llama_server: LlamaServer) -> None:
    m = get_model(base_url=llama_server.base_url)
    assert isinstance(m, OpenAIModel)
    assert m.model is None
    reply = m.complete([{"role": "user", "content": "hi"}], max_tokens=2)
    assert m.model
    assert m.model.endswith(".gguf")
    assert reply.model == m.name == f"openai:{m.model}"


def test_server_killed_mid_stream(own_llama_server: LlamaServer) -> None:
    m = get_model("openai:smollm", base_url=own_llama_server.base_url, max_retries=0, read_timeout=30)
    # a raw counting prompt keeps going until max_tokens: the kill lands mid-reply
    s = m.stream_text("1, 2, 3, 4, 5, 6, 7, 8,", max_tokens=1500)
    assert next(s)
    own_llama_server.kill()
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        for _ in s:
            pass
    assert time.monotonic() - start < 20
    assert "broke in the middle of the reply" in str(info.value)
    assert info.value.__cause__ is not None


def test_no_server_on_the_port() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    m = get_model("openai:x", base_url=url, max_retries=0)
    with pytest.raises(ModelError) as info:
        m.complete(COUNT, max_tokens=2)
    assert str(info.value).startswith(f"no server at {url}: is it running?")
    assert info.value.__cause__ is not None
    # with the default retries it still gives up quickly (exponential backoff, 2 retries)
    start = time.monotonic()
    with pytest.raises(ModelError, match="no server at"):
        get_model("openai:x", base_url=url).complete(COUNT, max_tokens=2)
    assert time.monotonic() - start < 15


# -- misbehaving servers --------------------------------------------------------------------------

Behaviour = Callable[[BaseHTTPRequestHandler, int], None]


class FakeOpenAIServer:
    """A real HTTP server on 127.0.0.1 whose answer to request n is ``behaviour(handler, n)``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.requests = 0
        self.release = threading.Event()  # ends any sleeping handler at teardown
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests += 1
                behaviour(self, outer.requests)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = HttpServerThread(Handler)
        self.base_url = f"{self.server.url}/v1"

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.fixture
def fake_server() -> Iterator[Callable[[Behaviour], FakeOpenAIServer]]:
    servers: list[FakeOpenAIServer] = []

    def start(behaviour: Behaviour) -> FakeOpenAIServer:
        servers.append(FakeOpenAIServer(behaviour))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def send_json(
    h: BaseHTTPRequestHandler, status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(data)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)


COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def test_slow_server_hits_the_read_timeout(fake_server: Callable[[Behaviour], FakeOpenAIServer]) -> None:
    server = fake_server(lambda h, n: server.release.wait(30))
    m = get_model("openai:m", base_url=server.base_url, read_timeout=0.5, max_retries=0)
    start = time.monotonic()
    with pytest.raises(ModelError, match=r"did not answer within 0.5s"):
        m.complete(COUNT, max_tokens=2)
    assert time.monotonic() - start < 10


def test_server_stalling_mid_stream(fake_server: Callable[[Behaviour], FakeOpenAIServer]) -> None:
    def stall(h: BaseHTTPRequestHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.end_headers()
        event = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}  # fmt: skip
        h.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        h.wfile.flush()
        server.release.wait(30)

    server = fake_server(stall)
    m = get_model("openai:m", base_url=server.base_url, read_timeout=0.5, max_retries=0)
    s = m.stream(COUNT, max_tokens=5)
    assert next(s) == "Hel"
    with pytest.raises(ModelError, match=r"went silent for more than 0\.5s in the middle of the reply"):
        next(s)


def test_stream_cut_short_without_finish(fake_server: Callable[[Behaviour], FakeOpenAIServer]) -> None:
    def short(h: BaseHTTPRequestHandler, n: int) -> None:
        event = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}  # fmt: skip
        body = f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode()
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    server = fake_server(short)
    m = get_model("openai:m", base_url=server.base_url, max_retries=0)
    with pytest.raises(ModelError, match="ended the stream before the reply was finished"):
        m.stream(COUNT, max_tokens=5).finish()


def test_5xx_is_retried_with_backoff(fake_server: Callable[[Behaviour], FakeOpenAIServer]) -> None:
    def flaky(h: BaseHTTPRequestHandler, n: int) -> None:
        if n <= 2:
            send_json(h, 503, {"error": {"message": "warming up"}}, {"retry-after-ms": "50"})
        else:
            send_json(h, 200, COMPLETION)

    server = fake_server(flaky)
    reply = get_model("openai:m", base_url=server.base_url, max_retries=2).complete(COUNT, max_tokens=2)
    assert reply.text == "ok"
    assert reply.usage.prompt_tokens == 3
    assert server.requests == 3


def test_5xx_after_retries_is_a_clear_error(fake_server: Callable[[Behaviour], FakeOpenAIServer]) -> None:
    server = fake_server(
        lambda h, n: send_json(h, 500, {"error": {"message": "boom"}}, {"retry-after-ms": "10"})
    )
    with pytest.raises(ModelError, match=r"failed with HTTP 500 \(after 1 retries\): boom"):
        get_model("openai:m", base_url=server.base_url, max_retries=1).complete(COUNT, max_tokens=2)
    assert server.requests == 2


def test_rate_limit(fake_server: Callable[[Behaviour], FakeOpenAIServer]) -> None:
    server = fake_server(
        lambda h, n: send_json(h, 429, {"error": {"message": "slow down"}}, {"retry-after-ms": "10"})
    )
    with pytest.raises(ModelError, match=r"rate limiting us \(429\) \(after 1 retries\)"):
        get_model("openai:m", base_url=server.base_url, max_retries=1).complete(COUNT, max_tokens=2)
    assert server.requests == 2


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (401, "rejected the API key"),
        (404, "answered 404 for model 'm'"),
        (400, "rejected the request (HTTP 400): bad"),
    ],
)
def test_client_errors(
    fake_server: Callable[[Behaviour], FakeOpenAIServer], status: int, needle: str
) -> None:
    server = fake_server(lambda h, n: send_json(h, status, {"error": {"message": "bad"}}))
    with pytest.raises(ModelError) as info:
        get_model("openai:m", base_url=server.base_url).complete(COUNT, max_tokens=2)
    assert needle in str(info.value)
    assert server.requests == 1


def sse_pieces(h: BaseHTTPRequestHandler, pieces: list[str]) -> None:
    """Stream ``pieces`` as chat chunks, then a finish chunk and [DONE] (a server that ignores stop)."""
    events = [{"delta": {"content": p}, "finish_reason": None} for p in pieces]
    events.append({"delta": {}, "finish_reason": "length"})
    body = "".join(
        "data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                               "choices": [{"index": 0, **e}]}) + "\n\n"
        for e in events
    ) + "data: [DONE]\n\n"  # fmt: skip
    data = body.encode()
    h.send_response(200)
    h.send_header("content-type", "text/event-stream")
    h.send_header("content-length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def test_stops_apply_even_when_the_server_ignores_them(
    fake_server: Callable[[Behaviour], FakeOpenAIServer],
) -> None:
    server = fake_server(lambda h, n: sse_pieces(h, ["Hel", "lo ST", "OP wor", "ld"]))
    m = get_model("openai:m", base_url=server.base_url, max_retries=0)
    s = m.stream(COUNT, stop=["STOP"], max_tokens=20)
    assert list(s) == ["Hel", "lo "]
    assert s.reply is not None
    assert s.reply.text == "Hello "
    assert s.reply.finish_reason is FinishReason.STOP
    s = m.stream(COUNT, stop=["NOPE"], max_tokens=20)
    assert "".join(s) == "Hello STOP world"
    assert s.reply is not None
    assert s.reply.finish_reason is FinishReason.LENGTH


def test_more_stop_sequences_than_openai_accepts(llama_server: LlamaServer) -> None:
    m = get_model("openai:smollm", base_url=llama_server.base_url)
    m.complete(STORY, max_tokens=24)  # same cache state for the calls compared below
    full = m.complete(STORY, max_tokens=24).text
    stop = full[8:11]
    stops = ["@@1", "@@2", "@@3", "@@4", "@@5", stop]  # the one that matters is sixth: not sent to the server
    reply = m.complete(STORY, max_tokens=24, stop=stops)
    assert reply.text == full[: full.index(stop)]
    assert reply.finish_reason is FinishReason.STOP
