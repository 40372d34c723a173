"""Random LoRA adapters in llama.cpp's GGUF format, written with the production exporter, for
tests that need a real adapter without training one (merge, likelihood bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PROJ = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


def gguf_shape(model: Path) -> dict[str, Any]:
    """What an adapter for ``model`` must match: architecture, blocks, heads, tensor shapes."""
    import gguf

    reader = gguf.GGUFReader(str(model))
    arch = reader.get_field("general.architecture").contents()
    return {
        "arch": arch,
        "layers": reader.get_field(f"{arch}.block_count").contents(),
        "n_head": reader.get_field(f"{arch}.attention.head_count").contents(),
        "n_head_kv": reader.get_field(f"{arch}.attention.head_count_kv").contents(),
        "dims": {t.name: tuple(int(n) for n in reversed(t.shape.tolist())) for t in reader.tensors},
    }


def write_adapter(
    path: Path,
    shape: dict[str, Any],
    *,
    sigma: float,
    layers: range | None = None,
    rank: int = 4,
    seed: int = 0,
) -> Path:
    """A random LoRA on q/k/v/o of ``layers`` (``sigma``: std of B; 0 gives B = 0, PEFT's initial state)."""
    from codeloop.selftrain.gguf_adapter import write_lora_gguf

    rng = np.random.default_rng(seed)
    state = {}
    for i in layers if layers is not None else range(shape["layers"]):
        for proj, name in PROJ.items():
            out, inp = shape["dims"][f"blk.{i}.{name}.weight"]
            key = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            state[f"{key}.lora_A.weight"] = rng.normal(0, inp**-0.5, (rank, inp)).astype(np.float32)
            state[f"{key}.lora_B.weight"] = rng.normal(0, sigma, (out, rank)).astype(np.float32) * (sigma > 0)
    write_lora_gguf(
        state,
        path,
        architecture=shape["arch"],
        alpha=2.0 * rank,
        n_head=shape["n_head"],
        n_head_kv=shape["n_head_kv"],
    )
    return path
