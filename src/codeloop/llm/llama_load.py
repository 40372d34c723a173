"""Loading a GGUF into ``llama_cpp.Llama``: quietly, with this host's llama.cpp workarounds.

Kept apart from generation so the benchmark and the server launcher load models exactly
the way codeloop does.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codeloop.errors import ModelError
from codeloop.llm.settings import EmbeddedSettings

__all__ = ["chat_formatter", "cpu_has_amx", "load_llama", "model_params_override", "quiet_openmp"]

_load_lock = threading.Lock()

_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def quiet_openmp() -> None:
    """Make llama.cpp's OpenMP threads sleep, not spin, between steps (before llama_cpp loads).

    Spinning threads fight with everything else on a small machine (the sandbox, other
    models): measured on 2 busy cores, SmolLM2 decoded 7 tok/s spinning and 20 tok/s passive.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cpu_has_amx() -> bool:
    """True on CPUs with Intel AMX (Sapphire Rapids and later)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_int8" in line.split()
    except OSError:
        pass
    return False


def load_llama(
    path: Path, settings: EmbeddedSettings, lora_path: Path | None = None, *, logits_all: bool = False
) -> Any:
    """Construct ``llama_cpp.Llama`` quietly (with a LoRA adapter GGUF), translating failures into ModelError.

    ``logits_all`` keeps every evaluated position's logits in ``Llama.scores`` (``n_ctx`` rows of
    the vocabulary: ~1.2 GB at 2048 tokens for Qwen), for scoring a given text; generation never
    needs it."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if lora_path is not None and not lora_path.is_file():
        raise ModelError(f"adapter file not found: {lora_path}")
    quiet_openmp()
    try:
        import llama_cpp
        import llama_cpp.llama_cpp as lib
    except ImportError as e:
        raise ModelError(
            "llama-cpp-python is not installed (it compiles on install, ~10 minutes on 2 cores): "
            "pip install 'llama-cpp-python==0.3.36'"
        ) from e
    repack = settings.repack if settings.repack is not None else not cpu_has_amx()
    kwargs: dict[str, Any] = {
        "model_path": str(path),
        "n_ctx": settings.n_ctx,
        "n_threads": settings.n_threads,
        "n_threads_batch": settings.n_threads,
        "n_batch": settings.n_batch,
        "n_ubatch": settings.n_batch,
        "flash_attn": settings.flash_attn,
        "verbose": False,
    }
    if logits_all:
        kwargs["logits_all"] = True
    if lora_path is not None:
        kwargs["lora_path"] = str(lora_path)
    try:
        with _load_lock, model_params_override(lib, use_extra_bufts=repack):
            return llama_cpp.Llama(**kwargs)
    except Exception as e:  # llama-cpp-python raises ValueError/RuntimeError on bad files
        raise ModelError(f"cannot load model {path}: {e} (is it a complete GGUF file?)") from e


@contextlib.contextmanager
def model_params_override(lib: Any, *, use_extra_bufts: bool) -> Iterator[None]:
    """Set llama.cpp model params that ``Llama()`` has no argument for, during one load.

    ``use_extra_bufts`` off keeps weights out of the AMX buffer type, whose matmul crashes
    with a segfault in this llama.cpp (ggml-org/llama.cpp#20824) on AMX CPUs.
    """
    if use_extra_bufts:
        yield
        return
    original = lib.llama_model_default_params

    def params() -> Any:
        p = original()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = original


def chat_formatter(llama: Any) -> Any:
    """The GGUF's own chat template (ChatML when the file has none), as llama-cpp-python renders it."""
    from llama_cpp import llama_chat_format

    template = llama.metadata.get("tokenizer.chat_template") or _CHATML
    model = llama._model
    eos, bos = model.token_eos(), model.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos) if eos >= 0 else "",
        bos_token=model.token_get_text(bos) if bos >= 0 else "",
        stop_token_ids=[eos],
    )
