"""codeloop's own small code language model: tokenise, embed, encode, decode, train, sample.

A byte-level BPE tokeniser (``tokenizers``), a decoder-only Transformer or an LSTM (PyTorch),
a trainer with checkpoints and exact resume, held-out bits per byte, sampling with a KV cache
and fill-in-the-middle, so a trained model completes code at a cursor (``lm:DIR``).

PyTorch is the optional ``train`` extra: nothing here imports it until a model is built or
loaded, so ``import codeloop`` and the CLI stay fast without it. See ``docs/lm.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codeloop.errors import ModelError

if TYPE_CHECKING:
    from codeloop.llm.base import Model

__all__ = ["TRAIN_EXTRA_HINT", "load_model", "require_torch"]

TRAIN_EXTRA_HINT = "the small LM needs PyTorch: pip install 'codeloop[train]' (torch==2.13.0, tokenizers)"


def require_torch() -> None:
    """Raise a clear :class:`ModelError` when the ``train`` extra is missing."""
    try:
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise ModelError(f"{TRAIN_EXTRA_HINT} ({e})") from e


def load_model(directory: str, **options: Any) -> Model:
    """``get_model("lm:DIR")``: the trained model in ``DIR`` as a codeloop ``Model``."""
    require_torch()
    from codeloop.lm.backend import LMModel

    return LMModel.load(directory, **options)
