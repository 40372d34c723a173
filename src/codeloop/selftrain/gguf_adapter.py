"""Write a PEFT LoRA as a llama.cpp adapter GGUF (what ``Llama(lora_path=...)`` loads).

The format (llama.cpp's ``convert_lora_to_gguf.py`` writes the same): metadata
``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, the base model's
``general.architecture``; for every adapted matrix two F16 tensors named after the base tensor,
``blk.N.attn_q.weight.lora_a`` (numpy shape ``(r, in)``, PEFT's ``lora_A``) and ``.lora_b``
(``(out, r)``, PEFT's ``lora_B``). llama.cpp scales the product by ``alpha / r``.

For the ``llama`` architecture the GGUF converter permutes the rows of ``q``/``k`` (rotary
layout); transformers undoes that when it loads the GGUF, so the LoRA is trained in the
unpermuted layout and its ``lora_b`` rows must be permuted back here. Qwen2 has no such permute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TARGET_MODULES", "gguf_tensor_name", "write_lora_gguf"]

#: the projections a codeloop LoRA adapts, with their llama.cpp tensor names
TARGET_MODULES: dict[str, str] = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
}
_PEFT_KEY = re.compile(r"layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|o_proj)\.lora_([AB])(?:\.default)?\.weight$")


def gguf_tensor_name(peft_key: str) -> tuple[str, str, str] | None:
    """``(base tensor, projection, "a"|"b")`` for a PEFT state-dict key, None for other keys."""
    m = _PEFT_KEY.search(peft_key)
    if m is None:
        return None
    layer, proj, ab = m.groups()
    return f"blk.{layer}.{TARGET_MODULES[proj]}.weight", proj, ab.lower()


def _permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The GGUF converter's rotary permutation of a q/k weight's output rows."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def write_lora_gguf(
    state: Mapping[str, Any],
    path: Path,
    *,
    architecture: str,
    alpha: float,
    n_head: int | None = None,
    n_head_kv: int | None = None,
    name: str = "codeloop-selftrain",
) -> int:
    """Write ``state`` (PEFT LoRA tensors) to ``path``; returns how many tensors were written."""
    import gguf

    tensors: dict[str, np.ndarray] = {}
    for key, value in state.items():
        target = gguf_tensor_name(key)
        if target is None:
            continue
        base, proj, ab = target
        array = value.detach().to("cpu").float().numpy() if hasattr(value, "detach") else np.asarray(value)
        if ab == "b" and architecture == "llama" and proj in ("q_proj", "k_proj"):
            heads = n_head if proj == "q_proj" else (n_head_kv or n_head)
            if not heads:
                raise ValueError("a llama-architecture adapter needs n_head to permute q/k")
            array = _permute_rows(array, heads)
        tensors[f"{base}.lora_{ab}"] = np.ascontiguousarray(array.astype(np.float16))
    if not tensors:
        raise ValueError("no LoRA tensors of q/k/v/o projections found in the adapter state")
    unpaired = {k[: -len(".lora_a")] for k in tensors if k.endswith(".lora_a")} ^ {
        k[: -len(".lora_b")] for k in tensors if k.endswith(".lora_b")
    }
    if unpaired:
        raise ValueError(f"LoRA tensors without their pair: {sorted(unpaired)[:3]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    writer = gguf.GGUFWriter(str(tmp), architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for tname in sorted(tensors):
        writer.add_tensor(tname, tensors[tname])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return len(tensors)
