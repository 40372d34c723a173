"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp) through the official SDK.

Chat goes to ``/chat/completions``; raw prompts (no chat template) go to ``/completions``.
The SDK retries 429s, 5xx answers and dropped connections with exponential backoff; what
still fails becomes one :class:`~codeloop.errors.ModelError` that says what to do.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from codeloop.errors import ModelError
from codeloop.llm.base import Model
from codeloop.llm.settings import RemoteSettings
from codeloop.llm.stops import StopMatcher
from codeloop.llm.types import Chunk, FinishReason, Request, Usage

__all__ = ["OPENAI_BASE_URL", "OpenAIModel"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
_NO_KEY = "sk-no-key-required"
_SERVER_STOPS = 4  # the most stop sequences OpenAI's API accepts  # local servers ignore the key, but the SDK insists on one


def _http_errors(name: str) -> tuple[type[BaseException], ...]:
    """An error class of the HTTP library under the SDK, which lets them escape mid-stream."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):  # openai>=3 uses httpx2, older releases httpx
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


class OpenAIModel(Model):
    """A model served over the OpenAI API. ``model=None`` asks the server for its first model."""

    def __init__(
        self,
        model: str | None,
        *,
        base_url: str,
        api_key: str | None = None,
        settings: RemoteSettings | None = None,
        name: str | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as e:
            raise ModelError("the openai package is not installed: pip install 'openai>=1.40'") from e
        self._openai = openai
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.settings = settings or RemoteSettings.resolve()
        self.name = name or f"openai:{model or '?'}"
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or _NO_KEY,
            timeout=openai.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout),
            max_retries=self.settings.max_retries,
        )
        # what can escape while a stream is read: the SDK's errors or its HTTP library's
        self._silent_errors: tuple[type[BaseException], ...] = (
            openai.APITimeoutError,
            *_http_errors("TimeoutException"),
        )
        self._broken_errors: tuple[type[BaseException], ...] = (
            openai.APIConnectionError,
            *_http_errors("HTTPError"),
        )

    def close(self) -> None:
        self._client.close()

    # -- requests ------------------------------------------------------------------------
    def _model_id(self) -> str:
        if self.model is None:
            try:
                models = list(self._client.models.list())
            except self._openai.APIError as e:
                raise self._translate(e) from e
            if not models:
                raise ModelError(f"the server at {self.base_url} lists no models: name one with --model")
            self.model = str(models[0].id)
            self.name = f"{self.name.rsplit(':', 1)[0]}:{self.model}"
        return self.model

    def execute(self, request: Request) -> Iterator[Chunk]:
        params: dict[str, Any] = {
            "model": self._model_id(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": request.stream,
        }
        if request.stop:
            # OpenAI takes at most 4; all of them are also applied here (see _stopped), so every
            # server cuts at the same place and none shows any part of a stop sequence
            params["stop"] = list(request.stop[:_SERVER_STOPS])
        if request.seed is not None:
            params["seed"] = request.seed
        if request.stream:
            params["stream_options"] = {"include_usage": True}
        chat = request.messages is not None
        try:
            if chat:
                messages: Any = [dict(m) for m in request.messages or ()]
                response = self._client.chat.completions.create(messages=messages, **params)
            else:
                response = self._client.completions.create(prompt=request.prompt or "", **params)
        except self._openai.APIError as e:
            raise self._translate(e) from e
        chunks = iter([self._whole(response, chat)]) if not request.stream else self._streamed(response, chat)
        yield from _stopped(chunks, request.stop) if request.stop else chunks

    def _whole(self, response: Any, chat: bool) -> Chunk:
        if not response.choices:
            raise ModelError(f"the server at {self.base_url} sent a reply with no choices")
        choice = response.choices[0]
        text = (choice.message.content if chat else choice.text) or ""
        return Chunk(
            text=text, finish_reason=FinishReason.parse(choice.finish_reason), usage=_usage(response.usage)
        )

    def _streamed(self, stream: Any, chat: bool) -> Iterator[Chunk]:
        finish: FinishReason | None = None
        usage: Usage | None = None
        try:
            for event in stream:
                if getattr(event, "usage", None) is not None:
                    usage = _usage(event.usage)
                for choice in event.choices or ():
                    text = (choice.delta.content if chat else choice.text) or ""
                    if text:
                        yield Chunk(text=text)
                    if choice.finish_reason is not None:
                        finish = FinishReason.parse(choice.finish_reason)
        except self._silent_errors as e:
            raise ModelError(
                f"the server at {self.base_url} went silent for more than {self.settings.read_timeout:g}s "
                "in the middle of the reply: it is overloaded or stuck; raise read_timeout if it is just slow"
            ) from e
        except self._broken_errors as e:
            raise ModelError(
                f"the connection to {self.base_url} broke in the middle of the reply "
                f"({type(e).__name__}: {e or 'no detail'}): did the server stop or crash?"
            ) from e
        except self._openai.APIError as e:
            raise self._translate(e) from e
        finally:
            stream.close()
        if finish is None:
            raise ModelError(f"the server at {self.base_url} ended the stream before the reply was finished")
        yield Chunk(finish_reason=finish, usage=usage)

    # -- errors --------------------------------------------------------------------------
    def _translate(self, e: Exception) -> ModelError:
        """One actionable message per failure kind (the SDK already retried what is retryable)."""
        o = self._openai
        url = self.base_url
        retried = f" (after {self.settings.max_retries} retries)" if self.settings.max_retries else ""
        if isinstance(e, o.APITimeoutError):
            return ModelError(
                f"the server at {url} did not answer within {self.settings.read_timeout:g}s{retried}: "
                "it is overloaded or the model is slow; raise read_timeout ([model] read_timeout)"
            )
        if isinstance(e, o.APIConnectionError):
            cause = e.__cause__ or e.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            return ModelError(f"no server at {url}: is it running?{detail}")
        if isinstance(e, o.APIStatusError):
            status = e.status_code
            message = _server_message(e)
            if isinstance(e, o.AuthenticationError):
                return ModelError(
                    f"the server at {url} rejected the API key (401): set OPENAI_API_KEY or pass api_key"
                )
            if isinstance(e, o.PermissionDeniedError):
                return ModelError(f"the server at {url} refused access (403): {message}")
            if isinstance(e, o.NotFoundError):
                return ModelError(
                    f"the server at {url} answered 404 for model {self.model!r}: check the model name "
                    f"and that the base URL ends in /v1 ({message})"
                )
            if isinstance(e, o.RateLimitError):
                return ModelError(
                    f"the server at {url} is rate limiting us (429){retried}: wait and retry ({message})"
                )
            if status >= 500:
                return ModelError(f"the server at {url} failed with HTTP {status}{retried}: {message}")
            return ModelError(f"the server at {url} rejected the request (HTTP {status}): {message}")
        return ModelError(f"the OpenAI-compatible server at {url} failed: {e}")


def _stopped(chunks: Iterator[Chunk], stops: tuple[str, ...]) -> Iterator[Chunk]:
    """Apply the stop sequences to the text on our side too; stop reading at the first one."""
    matcher = StopMatcher(stops)
    try:
        for chunk in chunks:
            text = matcher.feed(chunk.text)
            if matcher.stopped:
                yield Chunk(text=text, finish_reason=FinishReason.STOP, usage=chunk.usage)
                return
            if chunk.finish_reason is not None:
                text += matcher.flush()
            if text or chunk.finish_reason is not None or chunk.usage is not None:
                yield Chunk(text=text, finish_reason=chunk.finish_reason, usage=chunk.usage)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # closes the HTTP stream when we stopped early


def _server_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(inner, str):
            return inner[:500]
    return str(getattr(e, "message", e))[:500]


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return Usage(
        prompt_tokens=getattr(raw, "prompt_tokens", None),
        completion_tokens=getattr(raw, "completion_tokens", None),
        cached_tokens=cached,
    )
