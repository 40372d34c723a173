"""Train with cross-entropy: AdamW, warm-up + cosine, clipping, evals, checkpoints, exact resume.

``train(config)`` runs the whole job: read the corpus, train the tokeniser, tokenise, build the
model and optimise next-token cross-entropy until ``steps`` or ``time_budget``. Every
``eval_every`` steps it measures held-out loss and bits per byte, appends a line to
``DIR/log.jsonl``, saves ``DIR/checkpoint.pt`` and redraws ``DIR/loss.png``. ``resume`` picks a
checkpoint up where it stopped: same weights, optimiser moments, schedule, data order and RNG.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TextIO

from codeloop.errors import ConfigError, ModelError
from codeloop.lm import require_torch

__all__ = ["TrainConfig", "TrainResult", "lr_at", "train"]

LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"
DEFAULT_TIME_BUDGET = 600.0
_CALIBRATION_S = 5.0  # a --time-budget run measures its step time this long, then fixes the schedule


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; stored in the checkpoint (``out``/``resume`` aside)."""

    out: str
    corpus: tuple[str, ...] = ()  # empty: the interpreter's standard library
    heldout_fraction: float = 0.05
    arch: str = "transformer"
    positions: str = "rope"
    vocab_size: int = 2048
    block_size: int = 256
    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    dropout: float = 0.0
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    steps: int | None = None
    time_budget: float | None = None
    stop_at: int | None = None  # stop (with a checkpoint) at this step, without changing the schedule
    eval_every: int = 200
    eval_tokens: int = 32768
    fim_rate: float = 0.5
    seed: int = 1337
    threads: int | None = None
    compile: bool = False
    resume: bool = False

    def check(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be positive, got {self.steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError(f"--time-budget must be positive seconds, got {self.time_budget}")
        for name in ("batch_size", "eval_every", "eval_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.fim_rate <= 1:
            raise ConfigError(f"--fim-rate must be between 0 and 1, got {self.fim_rate}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1 or self.grad_clip <= 0 or self.warmup_steps < 0:
            raise ConfigError(
                "--lr and --grad-clip must be positive, --min-lr-ratio in [0, 1], --warmup >= 0"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be positive, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["corpus"] = list(self.corpus)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in data.items() if k in known}
        d["corpus"] = tuple(d.get("corpus", ()))
        return cls(**d)


@dataclass
class TrainResult:
    """What a run did: where it stands, and its last held-out figures."""

    out: str
    step: int
    total_steps: int
    tokens: int
    elapsed: float
    parameters: int
    heldout_loss: float | None
    heldout_bpb: float | None
    unigram_bpb: float
    train_loss: float | None
    tokens_per_second: float
    stopped: str  # "done", "time budget", "stop-at", "interrupted"
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_at(step: int, *, base: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to ``base * min_ratio``."""
    warmup = min(warmup, max(total // 10, 1))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class _Progress:
    """A one-line progress bar on a terminal (loss, tokens/s, ETA); plain lines per eval otherwise."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = bool(stream is not None and stream.isatty())
        self.last = 0.0

    def step(self, step: int, loss: float, tok_s: float, eta: float, force: bool = False) -> None:
        if not self.tty or self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.25:
            return
        self.last = now
        width = 24
        filled = int(width * step / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        line = f"\r[{bar}] step {step}/{self.total} loss {loss:.3f} {tok_s:,.0f} tok/s ETA {_duration(eta)}"
        self.stream.write(line.ljust(90))
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r" + " " * 90 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class _StopFlag:
    """SIGINT sets a flag the loop checks after each step, so the checkpoint is always consistent."""

    def __init__(self) -> None:
        self.set = False
        self._old: Any = None

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.set:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def train(
    config: TrainConfig,
    *,
    progress: TextIO | None = sys.stderr,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Run (or resume) a training job; see the module doc. Raises ConfigError/ModelError on bad input."""
    config.check()
    require_torch()
    import torch

    from codeloop.lm.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
    from codeloop.lm.corpus import load_corpus
    from codeloop.lm.data import BatchSampler, UnigramBytes, document_stream
    from codeloop.lm.evaluate import evaluate_stream
    from codeloop.lm.model import ModelConfig, build_model, count_parameters
    from codeloop.lm.tokenizer import Tokenizer, train_tokenizer

    out = Path(config.out).expanduser()
    say = _Progress(progress, 0)
    state: dict[str, Any] | None = None
    if config.resume:
        state = load_checkpoint(out)
        saved = TrainConfig.from_dict(state["train_config"])
        # The run's definition comes from the checkpoint; only how long this session runs may change.
        config = replace(
            saved,
            out=config.out,
            resume=True,
            stop_at=config.stop_at,
            time_budget=config.time_budget,
            threads=config.threads or saved.threads,
            compile=config.compile,
        )
    elif checkpoint_path(out).exists():
        raise ConfigError(
            f"{out} already holds a checkpoint: pass --resume to continue it, or choose another --out"
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)

    say.message(f"lm: reading the corpus ({', '.join(config.corpus) or 'the standard library'})")
    corpus = load_corpus([Path(p) for p in config.corpus] or None, heldout_fraction=config.heldout_fraction)
    if state is None:
        say.message(
            f"lm: training a {config.vocab_size}-token byte-level BPE on {len(corpus.train)} files "
            f"({corpus.train_bytes / 1e6:.1f} MB; {len(corpus.heldout)} held out)"
        )
        tok = train_tokenizer(corpus.train, config.vocab_size)
        unigram = UnigramBytes.fit(corpus.train)
    else:
        tok = Tokenizer.from_json(state["tokenizer"])
        unigram = UnigramBytes(tuple(state["unigram"]))
    train_stream = document_stream(tok, corpus.train)
    heldout_stream = document_stream(tok, corpus.heldout)
    unigram_bpb = unigram.bits_per_byte(corpus.heldout)

    mcfg = ModelConfig(
        arch=config.arch,
        vocab_size=tok.vocab_size,
        block_size=config.block_size,
        d_model=config.d_model,
        n_layer=config.n_layer,
        n_head=config.n_head,
        dropout=config.dropout,
        positions=config.positions,
    )
    model = build_model(mcfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
        fused=False,
    )
    sampler = BatchSampler(
        train_stream,
        tok,
        block_size=config.block_size,
        batch_size=config.batch_size,
        fim_rate=config.fim_rate,
        seed=config.seed,
    )
    step, tokens, elapsed_before = 0, 0, 0.0
    history: list[dict[str, Any]] = []
    train_losses: list[float] = []
    total_steps = config.steps
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.set_state(state["rng"]["data"])
        torch.set_rng_state(state["rng"]["torch"])
        step, tokens, elapsed_before = int(state["step"]), int(state["tokens"]), float(state["elapsed"])
        history = list(state["history"])
        train_losses = [float(x) for x in state["train_losses"]]
        total_steps = int(state["total_steps"]) if state.get("total_steps") else None
    budget = config.time_budget
    if total_steps is None and budget is None:
        budget = DEFAULT_TIME_BUDGET
    n_params = count_parameters(model)
    say.message(
        f"lm: {config.arch} with {n_params / 1e6:.2f}M parameters, {tok.vocab_size} tokens, "
        f"context {config.block_size}; {train_stream.numel():,} training tokens, "
        f"{heldout_stream.numel():,} held out; unigram baseline {unigram_bpb:.3f} bits/byte"
    )

    step_fn = model
    if config.compile:
        step_fn = torch.compile(model)  # type: ignore[assignment]

    def run_eval() -> dict[str, float]:
        return evaluate_stream(
            model, tok, heldout_stream, block_size=config.block_size, max_tokens=config.eval_tokens
        )

    def save(stopped_at: int) -> None:
        payload = {
            "model_config": mcfg.to_dict(),
            "train_config": {**config.to_dict(), "resume": False, "stop_at": None},
            "tokenizer": tok.to_json(),
            "unigram": list(unigram.counts),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": stopped_at,
            "total_steps": total_steps,
            "tokens": tokens,
            "elapsed": elapsed_before + (time.monotonic() - t0),
            "history": history,
            "train_losses": train_losses,
            "rng": {"torch": torch.get_rng_state(), "data": sampler.state()},
        }
        save_checkpoint(out, payload)
        (out / "tokenizer.json").write_text(tok.to_json())
        (out / "config.json").write_text(
            json.dumps({"model": mcfg.to_dict(), "train": payload["train_config"]}, indent=2)
        )
        with open(out / LOG_NAME, "w") as f:
            for row in history:
                f.write(json.dumps(row) + "\n")
        _plot(out / PLOT_NAME, train_losses, history, unigram_bpb)

    t0 = time.monotonic()
    # tokens/s counts the seconds inside training steps only, from the second step of the session
    # on: the first one pays one-off costs (torch.compile's compilation, the allocator's warm-up)
    train_time = 0.0
    tokens_this_run = 0
    timed_steps = 0
    session_start = step
    stopped = "done"
    model.train()
    calibrated = total_steps is not None
    say = _Progress(progress, total_steps or 0)
    loss_value = float("nan")
    if step == 0:  # the untrained model's figure: the curve starts where learning starts
        ev = run_eval()
        history.append(
            {
                "step": 0,
                "tokens": 0,
                "elapsed": 0.0,
                "lr": 0.0,
                "train_loss": None,
                "heldout_loss": ev["loss"],
                "heldout_bpb": ev["bits_per_byte"],
                "tokens_per_second": None,
            }
        )
        say.message(
            f"step 0: held-out loss {ev['loss']:.3f} ({ev['bits_per_byte']:.3f} bits/byte) before training"
        )
    t_loop = time.monotonic()
    with _StopFlag() as stop:
        while True:
            if total_steps is not None and step >= total_steps:
                break
            if config.stop_at is not None and step >= config.stop_at:
                stopped = "stop-at"
                break
            if budget is not None and time.monotonic() - t0 >= budget:
                stopped = "time budget"
                break
            if stop.set:
                stopped = "interrupted"
                break
            ts = time.perf_counter()
            horizon = total_steps if total_steps is not None else 10**9
            lr = lr_at(
                step, base=config.lr, warmup=config.warmup_steps, total=horizon, min_ratio=config.min_lr_ratio
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = sampler.next_batch()
            logits, _ = step_fn(x)
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise ModelError(f"training diverged at step {step} (loss {loss_value}): lower --lr")
            if step > session_start:
                tokens_this_run += x.numel()
                train_time += time.perf_counter() - ts
                timed_steps += 1
            step += 1
            tokens += x.numel()
            train_losses.append(loss_value)
            tok_s = tokens_this_run / train_time if train_time > 0 else 0.0
            if (
                not calibrated
                and budget is not None
                and time.monotonic() - t_loop >= min(_CALIBRATION_S, budget / 20)
            ):
                # Fix the schedule's length from the measured step rate (evals take a little too).
                rate = (step - session_start) / (time.monotonic() - t_loop)
                total_steps = max(step + 1, int(step + rate * (budget - (time.monotonic() - t0)) * 0.95))
                calibrated = True
                say = _Progress(progress, total_steps)
            remaining = ((total_steps or step) - step) * (train_time / max(timed_steps, 1))
            say.step(step, loss_value, tok_s, remaining)
            if step % config.eval_every == 0 or (total_steps is not None and step >= total_steps):
                ev = run_eval()
                model.train()
                row = {
                    "step": step,
                    "tokens": tokens,
                    "elapsed": round(elapsed_before + time.monotonic() - t0, 2),
                    "lr": lr,
                    "train_loss": sum(train_losses[-config.eval_every :])
                    / len(train_losses[-config.eval_every :]),
                    "heldout_loss": ev["loss"],
                    "heldout_bpb": ev["bits_per_byte"],
                    "tokens_per_second": round(tok_s, 1),
                }
                history.append(row)
                say.message(
                    f"step {step}/{total_steps or '?'}: train loss {row['train_loss']:.3f}, held-out loss "
                    f"{ev['loss']:.3f} ({ev['bits_per_byte']:.3f} bits/byte), {tok_s:,.0f} tok/s"
                )
                if on_eval is not None:
                    on_eval(row)
                save(step)
    if not history or history[-1]["step"] != step:
        if step > 0 and stopped in ("done", "time budget"):
            ev = run_eval()
            history.append(
                {
                    "step": step,
                    "tokens": tokens,
                    "elapsed": round(elapsed_before + time.monotonic() - t0, 2),
                    "lr": None,
                    "train_loss": sum(train_losses[-config.eval_every :])
                    / max(1, len(train_losses[-config.eval_every :])),
                    "heldout_loss": ev["loss"],
                    "heldout_bpb": ev["bits_per_byte"],
                    "tokens_per_second": round(tokens_this_run / train_time, 1) if train_time else None,
                }
            )
            say.message(
                f"step {step} ({stopped}): held-out loss {ev['loss']:.3f} ({ev['bits_per_byte']:.3f} bits/byte)"
            )
        save(step)
    if stopped == "interrupted":
        say.message(f"lm: interrupted at step {step}; checkpoint saved: continue with --resume --out {out}")
    last = history[-1] if history else {}
    return TrainResult(
        out=str(out),
        step=step,
        total_steps=total_steps or step,
        tokens=tokens,
        elapsed=round(elapsed_before + time.monotonic() - t0, 2),
        parameters=n_params,
        heldout_loss=last.get("heldout_loss"),
        heldout_bpb=last.get("heldout_bpb"),
        unigram_bpb=unigram_bpb,
        train_loss=train_losses[-1] if train_losses else None,
        tokens_per_second=round(tokens_this_run / train_time, 1) if train_time else 0.0,
        stopped=stopped,
        history=history,
    )


def _plot(path: Path, train_losses: list[float], history: list[dict[str, Any]], unigram_bpb: float) -> None:
    """The loss curve: smoothed training loss and held-out loss per step (nats per token)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        if train_losses:
            k = max(1, len(train_losses) // 100)
            smooth = [
                sum(train_losses[max(0, i - k + 1) : i + 1]) / len(train_losses[max(0, i - k + 1) : i + 1])
                for i in range(len(train_losses))
            ]
            ax.plot(range(1, len(smooth) + 1), smooth, label="train (smoothed)", lw=1)
        if history:
            ax.plot(
                [h["step"] for h in history],
                [h["heldout_loss"] for h in history],
                "o-",
                label="held-out",
                lw=1.5,
            )
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.set_title(f"codeloop lm (unigram byte baseline: {unigram_bpb:.2f} bits/byte)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
