"""The embedded backend: a local GGUF run in-process with llama-cpp-python.

Every ``EmbeddedModel`` on the same file and settings shares one loaded runtime, so many
threads (an agent loop and an eval harness) can call ``get_model()`` freely: the weights
load once and calls take turns on the one KV cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from codeloop.llm.base import Model
from codeloop.llm.llama_runtime import LlamaRuntime, shared_runtime
from codeloop.llm.settings import EmbeddedSettings
from codeloop.llm.types import Chunk, Request

__all__ = ["EmbeddedModel"]


class EmbeddedModel(Model):
    """A GGUF file run by llama.cpp in this process; loads the weights when constructed."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        settings: EmbeddedSettings | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.name = name or f"gguf:{self.path}"
        self.settings = settings or EmbeddedSettings.resolve()
        self.adapter = Path(adapter).expanduser() if adapter is not None else None
        self.runtime: LlamaRuntime = shared_runtime(self.path, self.settings, self.adapter)

    def execute(self, request: Request) -> Iterator[Chunk]:
        return self.runtime.generate(request)

    @property
    def n_ctx(self) -> int:
        """The context window in tokens."""
        return self.runtime.n_ctx
