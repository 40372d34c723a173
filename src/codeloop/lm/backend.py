"""``lm:DIR``: a trained small LM as a codeloop :class:`~codeloop.llm.base.Model`.

It continues raw text prompts (``complete_text`` / ``stream_text``), and declares its own
fill-in-the-middle markers through ``fim_template``, so ``fim_prompt(model, before, after)``
builds the prompt it was trained on and ``codeloop complete --model lm:DIR`` works. It has no
chat template: chat requests raise a :class:`ModelError` that says so.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeloop.errors import ConfigError, ModelError
from codeloop.llm.base import Model
from codeloop.llm.fim import FimTemplate
from codeloop.llm.types import Chunk, FinishReason, Request, Usage
from codeloop.lm.generate import LoadedLM, load_lm
from codeloop.lm.tokenizer import EOT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

__all__ = ["LM_FIM", "LMModel"]

#: the markers ``codeloop lm train`` teaches (PSM order); the middle ends with end-of-text
LM_FIM = FimTemplate(prefix=FIM_PREFIX, suffix=FIM_SUFFIX, middle=FIM_MIDDLE, stops=(EOT,))


class LMModel(Model):
    """A checkpoint of ``codeloop lm train`` behind the one model interface (raw completion only)."""

    fim_template = LM_FIM

    def __init__(self, lm: LoadedLM, *, name: str, threads: int | None = None) -> None:
        self.lm = lm
        self.name = name
        self.threads = threads
        self._lock = threading.Lock()

    @classmethod
    def load(cls, directory: str, **options: Any) -> LMModel:
        threads = options.pop("n_threads", None)
        if options:
            raise ConfigError(f"lm: models take no options {sorted(options)} (only n_threads)")
        if not directory.strip():
            raise ConfigError(
                "lm: needs a directory, e.g. lm:~/models/my-lm (from `codeloop lm train --out`)"
            )
        path = Path(directory).expanduser()
        return cls(load_lm(path), name=f"lm:{path}", threads=threads)

    def execute(self, request: Request) -> Iterator[Chunk]:
        if request.prompt is None:
            raise ModelError(
                f"{self.name} is a small completion model without a chat template: give it raw text "
                "(complete_text, codeloop complete, codeloop lm sample), not chat messages"
            )
        import torch

        tok = self.lm.tokenizer
        ids = self._prompt_ids(request.prompt, request.max_tokens)
        stop_ids = tok.special_ids  # end-of-text or a stray FIM marker ends the text
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        sent = 0
        keep = max((len(s) for s in request.stop), default=0)  # hold back what may start a stop string
        produced = 0
        finish = FinishReason.LENGTH
        with self._lock:
            old_threads = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                for token in self.lm.generate(
                    ids,
                    max_new_tokens=request.max_tokens,
                    temperature=request.temperature,
                    top_k=None,
                    top_p=0.95 if request.temperature > 0 else None,
                    seed=request.seed,
                    stop_ids=stop_ids,
                ):
                    produced += 1
                    text += decoder.decode(tok.token_bytes[token])
                    hit = _first_stop(text, request.stop)
                    if hit is not None:
                        text = text[:hit]
                        finish = FinishReason.STOP
                        break
                    safe = len(text) - keep
                    if safe > sent:
                        yield Chunk(text=text[sent:safe])
                        sent = safe
                else:
                    if produced < request.max_tokens:
                        finish = FinishReason.STOP
                    text += decoder.decode(b"", final=True)
            finally:
                if self.threads:
                    torch.set_num_threads(old_threads)
        usage = Usage(prompt_tokens=len(ids), completion_tokens=produced)
        yield Chunk(text=text[sent:], finish_reason=finish, usage=usage)

    def _prompt_ids(self, prompt: str, max_tokens: int) -> list[int]:
        """Encode ``prompt``; a FIM prompt too long for the window keeps the text nearest the cursor."""
        tok = self.lm.tokenizer
        window = self.lm.config.block_size
        budget = window - min(max_tokens, window // 4) - 1
        if prompt.startswith(FIM_PREFIX) and FIM_SUFFIX in prompt and prompt.endswith(FIM_MIDDLE):
            before, _, after = prompt[len(FIM_PREFIX) : -len(FIM_MIDDLE)].partition(FIM_SUFFIX)
            pre, suf = tok.encode(before), tok.encode(after)
            room = budget - 3
            if len(pre) + len(suf) > room:
                suf_room = min(len(suf), max(room // 4, room - len(pre)))
                pre_room = room - suf_room
                pre, suf = pre[len(pre) - pre_room :] if pre_room > 0 else [], suf[:suf_room]
            return [tok.token_id(FIM_PREFIX), *pre, tok.token_id(FIM_SUFFIX), *suf, tok.token_id(FIM_MIDDLE)]
        ids = [tok.eot_id, *tok.encode(prompt)]  # a document starts after end-of-text, as in training
        return ids[-budget:] if len(ids) > budget else ids


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None
