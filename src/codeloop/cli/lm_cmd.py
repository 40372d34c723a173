"""``codeloop lm train | eval | sample``: codeloop's own small code language model.

Thin: it parses arguments, calls :mod:`codeloop.lm` and prints. ``--json`` prints one JSON
object as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from codeloop.errors import ConfigError

NAME = "lm"
HELP = "train, evaluate and sample codeloop's own small code language model"
DESCRIPTION = (
    "codeloop's own small code LM (needs the train extra: pip install 'codeloop[train]'). "
    "`lm train` trains a byte-level BPE tokeniser and a Transformer or LSTM from scratch on Python "
    "files (default: this interpreter's standard library); `lm eval` reports held-out bits per byte "
    "next to a unigram byte baseline; `lm sample` generates text. Use a trained model anywhere a "
    "completion model is enough with --model lm:DIR. See docs/lm.md."
)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON object as the last line of stdout",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's choice)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lm_command", metavar="VERB")
    t = sub.add_parser(
        "train",
        help="train a model from scratch (or --resume one)",
        description="Train a small code LM; checkpoints, log.jsonl and loss.png go to --out.",
    )
    t.add_argument("--out", required=True, metavar="DIR", help="directory for the checkpoint, log and plot")
    t.add_argument(
        "--corpus",
        nargs="+",
        metavar="PATH",
        default=[],
        help="Python files or directories (default: the interpreter's standard library, test/ excluded)",
    )
    t.add_argument(
        "--resume", action="store_true", help="continue the checkpoint in --out exactly where it stopped"
    )
    t.add_argument("--arch", choices=("transformer", "lstm"), default="transformer")
    t.add_argument("--positions", choices=("rope", "learned"), default="rope", help="Transformer positions")
    t.add_argument("--vocab-size", type=int, default=2048, help="BPE vocabulary size (default 2048)")
    t.add_argument(
        "--context", type=int, default=256, dest="block_size", help="context window in tokens (256)"
    )
    t.add_argument("--d-model", type=int, default=128, help="embedding width (128)")
    t.add_argument(
        "--layers", type=int, default=4, dest="n_layer", help="Transformer blocks or LSTM layers (4)"
    )
    t.add_argument("--heads", type=int, default=4, dest="n_head", help="attention heads (4)")
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (1e-3)")
    t.add_argument("--min-lr-ratio", type=float, default=0.1, help="final learning rate / peak (0.1)")
    t.add_argument("--warmup", type=int, default=100, dest="warmup_steps", help="warm-up steps (100)")
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument(
        "--steps", type=int, default=None, help="optimizer steps (exactly reproducible with --seed)"
    )
    t.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="train for this long (default 600 s when --steps is not given)",
    )
    t.add_argument(
        "--stop-at",
        type=int,
        default=None,
        metavar="STEP",
        help="stop at this step with a checkpoint, schedule unchanged (continue with --resume)",
    )
    t.add_argument(
        "--eval-every", type=int, default=200, help="held-out evaluation + checkpoint every N steps"
    )
    t.add_argument("--eval-tokens", type=int, default=32768, help="held-out tokens per periodic evaluation")
    t.add_argument(
        "--heldout", type=float, default=0.05, dest="heldout_fraction", help="held-out share of files"
    )
    t.add_argument("--fim-rate", type=float, default=0.5, help="share of fill-in-the-middle examples (0.5)")
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--compile", action="store_true", help="torch.compile the training step")
    _common(t)
    e = sub.add_parser(
        "eval",
        help="held-out cross-entropy, perplexity and bits per byte",
        description="Evaluate a model on text files, next to a unigram byte baseline.",
    )
    e.add_argument("dir", metavar="DIR", help="a directory written by lm train")
    e.add_argument(
        "--text",
        nargs="+",
        metavar="FILE",
        default=None,
        help="files or directories of .py files (default: the model's own held-out files)",
    )
    _common(e)
    s = sub.add_parser(
        "sample",
        help="generate text from a prompt (temperature, top-k, top-p)",
        description="Sample from a model with a KV cache; --suffix fills in the middle.",
    )
    s.add_argument("dir", metavar="DIR", help="a directory written by lm train")
    s.add_argument("--prompt", default="", help="the text to continue (default: a new file)")
    s.add_argument(
        "--suffix", default=None, help="text after the cursor: fill in the middle between prompt and suffix"
    )
    s.add_argument("--max-tokens", type=int, default=200)
    s.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    s.add_argument("--top-k", type=int, default=50, help="sample from the k likeliest tokens (0 = off)")
    s.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (1 = off)")
    s.add_argument("--seed", type=int, default=None)
    _common(s)


def run(args: argparse.Namespace) -> int:
    if args.lm_command is None:
        print("codeloop lm: choose a verb: train, eval or sample (codeloop lm --help)", file=sys.stderr)
        return 2
    from codeloop.lm import require_torch

    require_torch()
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be positive, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    handler = {"train": _train, "eval": _eval, "sample": _sample}[args.lm_command]
    return handler(args)


def _emit(args: argparse.Namespace, obj: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(obj))


def _train(args: argparse.Namespace) -> int:
    from codeloop.lm.train import TrainConfig, train

    names = [f.name for f in __import__("dataclasses").fields(TrainConfig)]
    values = {k: v for k, v in vars(args).items() if k in names and k not in ("out", "corpus")}
    config = TrainConfig(out=args.out, corpus=tuple(args.corpus), **values)
    result = train(config, progress=sys.stderr)
    if args.json:
        obj = result.to_dict()
        obj.pop("history")
        _emit(args, obj)
    else:
        bpb = f"{result.heldout_bpb:.3f}" if result.heldout_bpb is not None else "?"
        print(
            f"{result.stopped}: step {result.step}/{result.total_steps}, {result.tokens:,} tokens in "
            f"{result.elapsed:.0f} s ({result.tokens_per_second:,.0f} tok/s); held-out {bpb} bits/byte "
            f"(unigram baseline {result.unigram_bpb:.3f}); checkpoint in {result.out}"
        )
    return 130 if result.stopped == "interrupted" else 0


def _text_files(paths: list[str]) -> list[str]:
    texts: list[str] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            files = sorted(q for q in p.rglob("*.py") if q.is_file())
        elif p.is_file():
            files = [p]
        else:
            raise ConfigError(f"--text: no such file or directory: {p}")
        for f in files:
            try:
                texts.append(f.read_bytes().decode("utf-8", errors="replace"))
            except OSError as e:
                raise ConfigError(f"--text: cannot read {f}: {e.strerror}") from e
    if not any(t for t in texts):
        raise ConfigError("--text: no text to evaluate (empty files, or no .py files in the directories)")
    return texts


def _eval(args: argparse.Namespace) -> int:
    from codeloop.lm.corpus import load_corpus
    from codeloop.lm.evaluate import evaluate_texts
    from codeloop.lm.generate import load_lm

    lm = load_lm(args.dir)
    if args.text:
        texts, source = _text_files(args.text), "files"
    else:
        tc = lm.train_config
        corpus = load_corpus(
            [Path(p) for p in tc.get("corpus", [])] or None,
            heldout_fraction=float(tc.get("heldout_fraction", 0.05)),
        )
        texts, source = corpus.heldout, "held-out split"
    t0 = time.perf_counter()
    result = evaluate_texts(lm.model, lm.tokenizer, texts, block_size=lm.config.block_size)
    obj = {
        "model": str(Path(args.dir).expanduser()),
        "arch": lm.config.arch,
        "step": lm.step,
        "source": source,
        "files": len(texts),
        **result,
        "unigram_bits_per_byte": lm.unigram.bits_per_byte(texts),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if not args.json:
        print(f"{obj['files']} files ({source}), {result['bytes']:,} bytes, {result['tokens']:,} tokens")
        print(f"cross-entropy {result['loss']:.4f} nats/token, perplexity {result['perplexity']:.2f}")
        print(
            f"bits per byte {result['bits_per_byte']:.4f} (unigram byte baseline {obj['unigram_bits_per_byte']:.4f})"
        )
    _emit(args, obj)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from codeloop.lm.backend import LM_FIM
    from codeloop.lm.generate import load_lm

    if args.max_tokens < 1:
        raise ConfigError(f"--max-tokens must be positive, got {args.max_tokens}")
    if not 0 <= args.temperature <= 5:
        raise ConfigError(f"--temperature must be between 0 and 5, got {args.temperature}")
    if not 0 < args.top_p <= 1 or args.top_k < 0:
        raise ConfigError("--top-p must be in (0, 1] and --top-k >= 0")
    lm = load_lm(args.dir)
    tok = lm.tokenizer
    if args.suffix is not None:
        ids = tok.encode(LM_FIM.prompt(args.prompt, args.suffix))
    else:
        ids = [tok.eot_id, *tok.encode(args.prompt)]
    ids = ids[-(lm.config.block_size - 1) :]
    out = bytearray()
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    t0 = time.perf_counter()
    n = 0
    if not args.json:
        sys.stdout.write(args.prompt)
    for token in lm.generate(
        ids,
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k or None,
        top_p=args.top_p if args.top_p < 1 else None,
        seed=args.seed,
        stop_ids=tok.special_ids,
    ):
        n += 1
        piece = tok.token_bytes[token]
        out += piece
        if not args.json:
            sys.stdout.write(decoder.decode(piece))
            sys.stdout.flush()
    seconds = time.perf_counter() - t0
    text = out.decode("utf-8", errors="replace")
    if not args.json:
        sys.stdout.write(decoder.decode(b"", final=True))
        if args.suffix is not None:
            sys.stdout.write(args.suffix)
        sys.stdout.write("\n")
    _emit(
        args,
        {
            "prompt": args.prompt,
            "suffix": args.suffix,
            "text": text,
            "tokens": n,
            "seconds": round(seconds, 3),
            "tokens_per_second": round(n / seconds, 1) if seconds > 0 else None,
        },
    )
    return 0
