"""Model backends behind one interface: the embedded default and any OpenAI-compatible server.

>>> from codeloop.llm import get_model
>>> m = get_model()                                   # Qwen2.5-Coder-0.5B, offline
>>> for chunk in m.stream([{"role": "user", "content": "2+2?"}], max_tokens=16):
...     print(chunk, end="")
>>> reply = m.complete([{"role": "user", "content": "2+2?"}])
>>> reply.text, reply.usage.completion_tokens, reply.timings.time_to_first_token

Backends subclass :class:`Model` and implement one method, ``execute``, that yields chunks.
Consumers type against :class:`ChatModel` / :class:`TextModel` and say how to sample with one
:class:`Sampling` object (or its keyword form, as above).
"""

from __future__ import annotations

from codeloop.errors import ConfigError, ModelError
from codeloop.llm.base import Model, ReplyStream
from codeloop.llm.catalog import BUNDLED, DEFAULT_MODEL, BundledModel
from codeloop.llm.contract import ChatModel, ReplyStreamLike, TextModel
from codeloop.llm.registry import ModelCheck, check_model, default_model_name, get_model, resolve_name
from codeloop.llm.types import (
    Chunk,
    FinishReason,
    Message,
    Reply,
    Request,
    Sampling,
    SamplingOptions,
    Timings,
    Usage,
)

__all__ = [
    "BUNDLED",
    "DEFAULT_MODEL",
    "BundledModel",
    "ChatModel",
    "Chunk",
    "ConfigError",
    "FinishReason",
    "Message",
    "Model",
    "ModelCheck",
    "ModelError",
    "Reply",
    "ReplyStream",
    "ReplyStreamLike",
    "Request",
    "Sampling",
    "SamplingOptions",
    "TextModel",
    "Timings",
    "Usage",
    "check_model",
    "default_model_name",
    "get_model",
    "resolve_name",
]
