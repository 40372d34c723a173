"""Fine-tune a LoRA on verified examples, on the CPU, starting from the bundled GGUF.

No safetensors of the base model exist offline, so transformers loads (and dequantises) the
same GGUF llama.cpp runs; PEFT adds rank-``r`` adapters to the attention projections; only the
assistant's tokens count in the loss. The trained adapter is exported with
:func:`codeloop.selftrain.gguf_adapter.write_lora_gguf` for llama.cpp.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeloop.errors import CodeloopError

__all__ = ["LoraConfig", "TrainExample", "TrainingError", "load_base", "train_lora"]


class TrainingError(CodeloopError):
    """Fine-tuning could not run (missing extra, unreadable model, no examples)."""


@dataclass(frozen=True)
class TrainExample:
    """A rendered prompt (the exact text llama.cpp sees) and the reply to learn after it."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    lr: float = 2e-4
    steps: int = 60
    warmup: int = 5
    batch: int = 4  # examples per optimiser step (gradient accumulation, one sequence at a time)
    max_len: int = 1024  # tokens per example; longer prompts are cut from the left
    seed: int = 0
    threads: int = 0  # torch threads; 0: leave torch's default

    def __post_init__(self) -> None:
        for name in ("rank", "steps", "batch", "max_len"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.alpha > 0):
            raise TrainingError("lr and alpha must be positive")


def _torch() -> Any:
    try:
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise TrainingError(
            f"fine-tuning needs the selftrain extra ({e.name} is missing): pip install 'codeloop[selftrain]'"
        ) from e
    return torch


def load_base(gguf_path: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a GGUF file, dequantised to float32 (offline, nothing downloaded)."""
    torch = _torch()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if not gguf_path.is_file():
        raise TrainingError(f"base model file not found: {gguf_path}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    except Exception as e:  # transformers raises many kinds for an unsupported or broken file
        raise TrainingError(f"transformers cannot load {gguf_path.name}: {e}") from e
    return model, tokenizer


def _encode(tokenizer: Any, example: TrainExample, max_len: int) -> tuple[list[int], list[int]]:
    prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    reply = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
    reply = reply[:max_len]
    prompt = prompt[-(max_len - len(reply)) :] if len(prompt) + len(reply) > max_len else prompt
    ids = prompt + reply
    labels = [-100] * len(prompt) + reply
    return ids, labels


def train_lora(
    model: Any,
    tokenizer: Any,
    examples: Sequence[TrainExample],
    config: LoraConfig,
    *,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train a LoRA on ``examples``; returns the PEFT model and the per-step log."""
    torch = _torch()
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    from codeloop.selftrain.gguf_adapter import TARGET_MODULES

    if not examples:
        raise TrainingError("no training examples: the sampling stage verified no program")
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers 5 API that is deprecated for v6: noise for our users
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(
            model,
            PeftLoraConfig(
                r=config.rank,
                lora_alpha=int(config.alpha),
                lora_dropout=config.dropout,
                target_modules=list(TARGET_MODULES),
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
    peft_model.train()
    encoded = [_encode(tokenizer, ex, config.max_len) for ex in examples]
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    order: list[int] = []
    rng = random.Random(config.seed)
    log: list[dict[str, Any]] = []
    start = time.perf_counter()
    for step in range(config.steps):
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        optimiser.zero_grad(set_to_none=True)
        total_loss, total_tokens = 0.0, 0
        batch = []
        for _ in range(config.batch):
            if not order:
                order = list(range(len(encoded)))
                rng.shuffle(order)
            batch.append(encoded[order.pop()])
        counted = sum(sum(1 for x in labels if x != -100) - 0 for _, labels in batch) or 1
        for ids, labels in batch:
            input_ids = torch.tensor([ids])
            target = torch.tensor([labels])
            logits = peft_model(input_ids=input_ids).logits[:, :-1, :]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
            )
            (loss / counted).backward()
            total_loss += float(loss.detach())
            total_tokens += sum(1 for x in labels[1:] if x != -100)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        entry = {
            "step": step + 1,
            "loss": total_loss / max(1, total_tokens),
            "lr": lr_at(step),
            "tokens": total_tokens,
            "seconds": round(time.perf_counter() - start, 2),
        }
        log.append(entry)
        if on_step is not None:
            on_step(entry)
    peft_model.eval()
    return peft_model, log


def adapter_state(peft_model: Any) -> dict[str, Any]:
    """The LoRA tensors of a trained PEFT model, by PEFT's names."""
    from peft import get_peft_model_state_dict

    return dict(get_peft_model_state_dict(peft_model, save_embedding_layers=False))


def model_shape(model: Any) -> dict[str, Any]:
    """Architecture facts the GGUF export needs."""
    cfg = model.config
    return {
        "model_type": cfg.model_type,
        "n_head": int(cfg.num_attention_heads),
        "n_head_kv": int(getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)),
    }


def write_log(log: list[dict[str, Any]], path: Path, config: LoraConfig) -> None:
    path.write_text(json.dumps({"config": asdict(config), "steps": log}, indent=1), encoding="utf-8")
