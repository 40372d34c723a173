"""One loaded llama.cpp model, shared by every handle on the same file and settings.

A llama.cpp context holds one KV cache, so calls are serialized by a lock. Consecutive calls
whose prompts share a prefix (a growing agent conversation) only evaluate the new tokens:
``Llama.generate`` keeps the matching prefix of its context. Each reply reports how many
prompt tokens came from that cache, read from llama.cpp's own counters.
"""

from __future__ import annotations

import atexit
import codecs
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeloop.errors import ModelError
from codeloop.llm.llama_load import chat_formatter, load_llama
from codeloop.llm.settings import EmbeddedSettings
from codeloop.llm.stops import StopMatcher
from codeloop.llm.threads import pick_threads
from codeloop.llm.types import Chunk, FinishReason, Request, Usage

__all__ = ["LlamaRuntime", "shared_runtime"]

_registry: dict[tuple[str, EmbeddedSettings, str | None], LlamaRuntime] = {}
_registry_lock = threading.Lock()

_THREAD_CHECK_EVERY = 16  # tokens between looks at how busy the CPUs are
# llama-cpp-python's defaults for its chat API, kept so replies match it at temperature > 0.
_SAMPLING: dict[str, Any] = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


@atexit.register
def _close_all() -> None:
    """Free the models before interpreter teardown, when llama-cpp-python's __del__ would fail."""
    with _registry_lock:
        runtimes = list(_registry.values())
        _registry.clear()
    for runtime in runtimes:
        runtime.close(timeout=5.0)  # a daemon thread still generating keeps its model: we exit anyway


def shared_runtime(path: Path, settings: EmbeddedSettings, adapter: Path | None = None) -> LlamaRuntime:
    """The process-wide runtime for ``path`` with ``settings`` (and a LoRA ``adapter``), loaded on first use."""
    key = (str(path.resolve()), settings, str(adapter.resolve()) if adapter is not None else None)
    with _registry_lock:
        runtime = _registry.get(key)
        if runtime is None:
            runtime = _registry[key] = LlamaRuntime(Path(key[0]), settings, adapter)
    runtime.load()
    return runtime


class LlamaRuntime:
    """A llama.cpp model + context and the lock that serializes its use."""

    def __init__(self, path: Path, settings: EmbeddedSettings, adapter: Path | None = None) -> None:
        self.path = path
        self.settings = settings
        self.adapter = adapter
        self._llama: Any = None
        self._formatter: Any = None
        self._pieces: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._owner: int | None = None  # thread id generating now; catches same-thread re-entry

    # -- loading -------------------------------------------------------------------------
    def load(self) -> None:
        """Load the weights once (thread-safe); later calls return at once."""
        if self._llama is not None:
            return
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._llama is None:
            self._llama = load_llama(self.path, self.settings, lora_path=self.adapter)
            self._formatter = chat_formatter(self._llama)

    def close(self, timeout: float = -1) -> bool:
        """Free the weights and context once no generation runs; False if ``timeout`` ran out."""
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            llama, self._llama = self._llama, None
        finally:
            self._lock.release()
        if llama is not None:
            llama.close()
        return True

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (for benchmarks and diagnostics)."""
        self.load()
        return self._llama

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The exact prompt text this model sees for ``messages`` (its chat template applied)."""
        self.load()
        return str(self._formatter(messages=[dict(m) for m in messages]).prompt)

    @property
    def n_ctx(self) -> int:
        return int(self.llama.n_ctx())

    # -- generation ----------------------------------------------------------------------
    def generate(self, request: Request) -> Iterator[Chunk]:
        """Yield the chunks of one request while holding the model's lock."""
        self.load()
        me = threading.get_ident()
        if self._owner == me:
            raise ModelError(
                "this thread is still reading another reply from the same model: "
                "finish or close() that stream before starting a new one"
            )
        with self._lock:
            self._owner = me
            try:
                self._load_locked()  # again: close() may have run since
                yield from self._generate_locked(request)
            finally:
                self._owner = None

    def _prompt_tokens(self, request: Request) -> list[int]:
        llama = self._llama
        try:
            if request.messages is not None:
                rendered = self._formatter(messages=[dict(m) for m in request.messages])
                return list(
                    llama.tokenize(
                        rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
                    )
                )
            assert request.prompt is not None
            return list(llama.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True))
        except Exception as e:  # jinja2 template errors, tokenizer failures
            raise ModelError(f"cannot build the prompt for {self.path.name}: {e}") from e

    def _set_threads(self, ctx: Any, current: int | None) -> int:
        """Pick the thread count for the next steps (see :mod:`codeloop.llm.threads`)."""
        import llama_cpp

        wanted = self.settings.n_threads
        if self.settings.adaptive_threads:
            wanted = pick_threads(wanted)
        if wanted != current:
            llama_cpp.llama_set_n_threads(ctx, wanted, wanted)
        return wanted

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = bytes(self._llama.detokenize([token]))
        return piece

    def _generate_locked(self, request: Request) -> Iterator[Chunk]:
        import llama_cpp

        llama = self._llama
        tokens = self._prompt_tokens(request)
        n_ctx = int(llama.n_ctx())
        if len(tokens) >= n_ctx:
            raise ModelError(
                f"the prompt is {len(tokens)} tokens but the context window is {n_ctx}: shorten the "
                "conversation or raise n_ctx (get_model(..., n_ctx=N), $CODELOOP_N_CTX or [model] n_ctx)"
            )
        budget = min(request.max_tokens, n_ctx - len(tokens))
        llama.set_seed(request.seed if request.seed is not None else random.randrange(2**31))
        ctx = llama.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        threads = self._set_threads(ctx, None)
        vocab = llama._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(request.stop)
        completion = 0
        cached: int | None = None
        finish = FinishReason.LENGTH
        try:
            for token in llama.generate(tokens, temp=request.temperature, **_SAMPLING):
                if cached is None:
                    perf = llama_cpp.llama_perf_context(ctx)
                    cached = max(0, len(tokens) - int(perf.n_p_eval) - int(perf.n_eval))
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = FinishReason.STOP
                    break
                completion += 1
                if completion % _THREAD_CHECK_EVERY == 0:
                    threads = self._set_threads(ctx, threads)
                text = stops.feed(decoder.decode(self._piece(token)))
                if text:  # with the usage so far, in case the caller stops reading here
                    yield Chunk(text=text, usage=Usage(len(tokens), completion, cached))
                if stops.stopped:
                    finish = FinishReason.STOP
                    break
                if completion >= budget:
                    break
        except ModelError:
            raise
        except Exception as e:  # llama_decode failures surface as RuntimeError/ValueError
            raise ModelError(f"llama.cpp failed while generating with {self.path.name}: {e}") from e
        tail = "" if stops.stopped else stops.feed(decoder.decode(b"", final=True)) + stops.flush()
        if tail:
            yield Chunk(text=tail)
        yield Chunk(
            finish_reason=finish,
            usage=Usage(prompt_tokens=len(tokens), completion_tokens=completion, cached_tokens=cached or 0),
        )
