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

__all__ = [
    "PRECISIONS",
    "LoraConfig",
    "TrainExample",
    "TrainingError",
    "cpu_bf16_flags",
    "load_base",
    "resolve_precision",
    "train_lora",
]

#: ``auto``: bf16 autocast where the CPU computes in bf16 natively (AMX or AVX512-BF16), else fp32
PRECISIONS = ("auto", "bf16", "fp32")


class TrainingError(CodeloopError):
    """Fine-tuning could not run (missing extra, unreadable model, no examples)."""


@dataclass(frozen=True)
class TrainExample:
    """A rendered prompt (the exact text llama.cpp sees) and the reply to learn after it."""

    prompt: str
    completion: str
    source: str = ""  # the task source it came from (questions, functions, generated): the log's per-source loss


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
    precision: str = "auto"  # see PRECISIONS; the LoRA weights, gradients and optimiser stay float32
    #: with validation examples: end with the LoRA weights of the measurement with the lowest
    #: validation loss (the untrained adapter, B = 0, included), not those of the last step
    keep_best: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
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


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The CPU's bf16 compute features (``amx_bf16``, ``avx512_bf16``) from ``/proc/cpuinfo``; [] elsewhere."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]


def resolve_precision(precision: str, cpuinfo: str | None = None) -> str:
    """``bf16`` or ``fp32``: ``auto`` is bf16 exactly where the CPU has native bf16 arithmetic."""
    if precision == "auto":
        return "bf16" if cpu_bf16_flags(cpuinfo) else "fp32"
    if precision not in PRECISIONS:
        raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


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
    full_logits: bool = False,
    validation: Sequence[TrainExample] = (),
    validate_every: int = 0,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train a LoRA on ``examples``; returns the PEFT model and the per-step log.

    ``validation``: held-out examples whose loss per reply token is measured before the first step
    (the first entry's ``validation_before``), every ``validate_every`` steps (0: about four times
    a run) and after the last (those entries' ``validation_loss``). Training never sees them; the
    time it takes is left out of ``seconds`` (it is ``validation_seconds``, cumulative). With
    ``config.keep_best`` the LoRA weights of the lowest measurement are restored at the end (the
    last entry's ``kept_step``; 0: training never lowered it, the adapter is the untrained one).

    The forward pass runs under bf16 autocast when ``config.precision`` resolves to bf16 (the
    weights, the LoRA and its optimiser stay float32; the loss is taken in float32), and the LM
    head is applied only where a reply token is predicted (``logits_to_keep``): the 151k-word
    head over a long prompt is most of the work otherwise. ``full_logits`` computes them all (the
    slow path, for comparison). Each log entry has the loss per task source too.
    """
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
    sources = [ex.source for ex in examples]
    precision = resolve_precision(config.precision)
    keep_arg = None if full_logits else _logits_to_keep_argument(model)
    held_out = [_encode(tokenizer, ex, config.max_len) for ex in validation]
    every = validate_every if validate_every > 0 else max(1, math.ceil(config.steps / 4))

    validating = 0.0

    def validation_loss() -> float:
        nonlocal validating
        began = time.perf_counter()
        peft_model.eval()
        total, tokens = 0.0, 0
        with torch.no_grad():
            for ids, labels in held_out:
                loss, n = _example_loss(torch, peft_model, ids, labels, precision, keep_arg)
                total, tokens = total + float(loss), tokens + n
        peft_model.train()
        validating += time.perf_counter() - began
        return total / max(1, tokens)

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
    trainable = [(name, p) for name, p in peft_model.named_parameters() if p.requires_grad]

    def snapshot() -> list[Any]:
        return [p.detach().clone() for _, p in trainable]

    before = validation_loss() if held_out else None
    best = (before, 0, snapshot()) if before is not None and config.keep_best else None
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
            batch.append(order.pop())
        counted = sum(sum(1 for x in encoded[i][1][1:] if x != -100) for i in batch) or 1
        by_source: dict[str, list[float]] = {}
        for index in batch:
            ids, labels = encoded[index]
            loss, tokens = _example_loss(torch, peft_model, ids, labels, precision, keep_arg)
            (loss / counted).backward()
            total_loss += float(loss.detach())
            total_tokens += tokens
            acc = by_source.setdefault(sources[index], [0.0, 0])
            acc[0] += float(loss.detach())
            acc[1] += tokens
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        entry = {
            "step": step + 1,
            "loss": total_loss / max(1, total_tokens),
            "lr": lr_at(step),
            "tokens": total_tokens,
            "seconds": round(time.perf_counter() - start, 2),
            "precision": precision,
        }
        if any(sources):
            entry["loss_by_source"] = {k: v[0] / max(1, v[1]) for k, v in sorted(by_source.items())}
        if before is not None and step == 0:
            entry["validation_before"] = before
        if held_out and ((step + 1) % every == 0 or step + 1 == config.steps):
            entry["validation_loss"] = measured = validation_loss()
            if best is not None and measured < best[0]:
                best = (measured, step + 1, snapshot())
        if best is not None and step + 1 == config.steps:
            entry["kept_step"] = best[1]
            if best[1] != step + 1:
                with torch.no_grad():
                    for (_, p), saved in zip(trainable, best[2], strict=True):
                        p.copy_(saved)
        if held_out:
            entry["seconds"] = round(time.perf_counter() - start - validating, 2)
            entry["validation_seconds"] = round(validating, 2)
        log.append(entry)
        if on_step is not None:
            on_step(entry)
    peft_model.eval()
    return peft_model, log


def _logits_to_keep_argument(model: Any) -> str | None:
    """The name under which the model's forward takes "compute logits for the last k positions only"."""
    import inspect

    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return name
    return None


def _example_loss(
    torch: Any, model: Any, ids: list[int], labels: list[int], precision: str, keep_arg: str | None
) -> tuple[Any, int]:
    """Summed cross-entropy over one example's reply tokens, and how many there are.

    Position ``t``'s logits predict token ``t + 1``; only positions from just before the first
    labelled token on are needed, so with ``keep_arg`` the head sees only those.
    """
    first = next((i for i, x in enumerate(labels) if x != -100), len(labels))
    start = max(0, first - 1) if keep_arg else 0
    kwargs: dict[str, Any] = {keep_arg: len(ids) - start} if keep_arg else {}
    input_ids = torch.tensor([ids])
    target = torch.tensor([labels[start + 1 :]])
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=input_ids, **kwargs).logits
    else:
        logits = model(input_ids=input_ids, **kwargs).logits
    logits = logits[:, -(len(ids) - start) :, :][:, :-1, :].float()
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss, sum(1 for x in labels[start + 1 :] if x != -100)


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
