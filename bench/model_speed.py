"""Embedded model speed: codeloop's ``get_model().stream`` against raw llama-cpp-python.

Same GGUF, prompt and llama.cpp settings, in one process, trials interleaved (the order
alternates) so machine noise hits both sides alike. Reports medians and ratios:

1. decode speed (tokens/s after the first token) of ``get_model().stream`` against
   ``llama_cpp.Llama.create_chat_completion(stream=True)`` on a second ``Llama`` instance;
2. time to first token of a second call that shares a ~1,000-token prefix with the first
   (a growing agent conversation) against that first call.

Run:  .venv/bin/python bench/model_speed.py [--model NAME] [--trials 7] [--tokens 64]
Targets: decode ratio >= 0.95; second-call TTFT ratio <= 0.30.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from codeloop.llm import get_model
from codeloop.llm.embedded import EmbeddedModel
from codeloop.llm.llama_load import cpu_has_amx, model_params_override

DECODE_PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Write a long, detailed tutorial on Python generators with many code examples.",
    },
]


def environment(model: EmbeddedModel) -> dict[str, Any]:
    import llama_cpp

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    s = model.settings
    return {
        "python": sys.version.split()[0],
        "llama_cpp_python": llama_cpp.__version__,
        "cpu": cpu,
        "cpus_usable": len(os.sched_getaffinity(0)),
        "load_avg_1m": os.getloadavg()[0],
        "model": model.name,
        "gguf": str(model.path),
        "settings": {
            "n_ctx": s.n_ctx,
            "n_threads": s.n_threads,
            "n_batch": s.n_batch,
            "flash_attn": s.flash_attn,
            "use_extra_bufts": s.repack if s.repack is not None else not cpu_has_amx(),
            "adaptive_threads": s.adaptive_threads,
        },
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
    }


def raw_llama(model: EmbeddedModel) -> Any:
    """A second, plain ``llama_cpp.Llama`` on the same file with the same settings."""
    import llama_cpp
    import llama_cpp.llama_cpp as lib

    s = model.settings
    repack = s.repack if s.repack is not None else not cpu_has_amx()
    with model_params_override(lib, use_extra_bufts=repack):
        return llama_cpp.Llama(
            model_path=str(model.path),
            n_ctx=s.n_ctx,
            n_threads=s.n_threads,
            n_threads_batch=s.n_threads,
            n_batch=s.n_batch,
            n_ubatch=s.n_batch,
            flash_attn=s.flash_attn,
            verbose=False,
        )


def time_ours(model: EmbeddedModel, messages: list[dict[str, str]], tokens: int) -> dict[str, float]:
    reply = model.stream(messages, max_tokens=tokens, temperature=0.0).finish()
    assert reply.usage.completion_tokens == tokens, f"stopped early: {reply.finish_reason}"
    ttft = reply.timings.time_to_first_token or 0.0
    return {
        "ttft": ttft,
        "total": reply.timings.total,
        "decode_tps": (tokens - 1) / (reply.timings.total - ttft),
    }


def time_raw(raw: Any, messages: list[dict[str, str]], tokens: int) -> dict[str, float]:
    start = time.perf_counter()
    first = None
    finish = None
    for chunk in raw.create_chat_completion(messages, max_tokens=tokens, temperature=0.0, stream=True):
        choice = chunk["choices"][0]
        if choice["delta"].get("content") and first is None:
            first = time.perf_counter()
        finish = choice.get("finish_reason") or finish
    end = time.perf_counter()
    assert finish == "length" and first is not None, f"stopped early: {finish}"
    return {"ttft": first - start, "total": end - start, "decode_tps": (tokens - 1) / (end - first)}


def time_raw_whole(raw: Any, messages: list[dict[str, str]], tokens: int) -> dict[str, float]:
    """Non-streaming call: the decode span is the wall time minus llama.cpp's own prompt-eval time."""
    import llama_cpp

    llama_cpp.llama_perf_context_reset(raw.ctx)
    start = time.perf_counter()
    out = raw.create_chat_completion(messages, max_tokens=tokens, temperature=0.0)
    end = time.perf_counter()
    assert out["choices"][0]["finish_reason"] == "length", "stopped early"
    prompt_s = llama_cpp.llama_perf_context(raw.ctx).t_p_eval_ms / 1000
    return {"ttft": prompt_s, "total": end - start, "decode_tps": tokens / (end - start - prompt_s)}


def bench_decode(
    model: EmbeddedModel, adaptive: EmbeddedModel, raw: Any, trials: int, tokens: int
) -> dict[str, Any]:
    """Rounds of all three sides back to back (order rotating); ratios are taken per round.

    On a shared machine the speed drifts by 2x within a minute; a ratio of two runs made
    seconds apart (paired) cancels most of that, a ratio of separate medians does not.
    """
    sides = {
        "codeloop stream": lambda: time_ours(model, DECODE_PROMPT, tokens),
        "codeloop adaptive": lambda: time_ours(adaptive, DECODE_PROMPT, tokens),
        "raw stream": lambda: time_raw(raw, DECODE_PROMPT, tokens),
        "raw whole": lambda: time_raw_whole(raw, DECODE_PROMPT, tokens),
    }
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    time_ours(model, DECODE_PROMPT, 8)  # warm every instance (page in the weights)
    time_ours(adaptive, DECODE_PROMPT, 8)
    time_raw(raw, DECODE_PROMPT, 8)
    for i in range(trials):
        order = list(sides)[i % len(sides) :] + list(sides)[: i % len(sides)]  # rotate who goes first
        for name in order:
            rows[name].append(sides[name]())
        print(
            f"  round {i + 1:2d}: " + "   ".join(f"{n} {rows[n][-1]['decode_tps']:6.2f} tok/s" for n in sides)
        )
    medians = {name: statistics.median(r["decode_tps"] for r in rows[name]) for name in sides}
    ours = [r["decode_tps"] for r in rows["codeloop stream"]]
    paired = {
        base: statistics.median(o / r["decode_tps"] for o, r in zip(ours, rows[base], strict=True))
        for base in ("raw stream", "raw whole")
    }
    return {
        "trials": rows,
        "medians": medians,
        "ratio": paired["raw stream"],
        "ratio_vs_whole": paired["raw whole"],
        "ratio_of_medians": medians["codeloop stream"] / medians["raw stream"],
        "adaptive_vs_raw_stream": statistics.median(
            a["decode_tps"] / r["decode_tps"]
            for a, r in zip(rows["codeloop adaptive"], rows["raw stream"], strict=True)
        ),
    }


def long_prefix(trial: int) -> str:
    """~1,000 tokens of a system prompt, unique per trial so no earlier trial can be cached."""
    lines = [f"Session {trial}-{time.time_ns()}. You are a coding assistant working in a Python sandbox."]
    for n in range(42):
        lines.append(f"Rule {n}: when a task mentions item {n}, compute it with code and print the result.")
    return "\n".join(lines)


def bench_prefix(model: EmbeddedModel, trials: int) -> dict[str, Any]:
    rows = []
    for i in range(trials):
        convo = [{"role": "system", "content": long_prefix(i)},
                 {"role": "user", "content": "What is 12 * 13? Answer briefly."}]  # fmt: skip
        first = model.complete(convo, max_tokens=16)
        convo += [{"role": "assistant", "content": first.text},
                  {"role": "user", "content": "And 14 * 15?"}]  # fmt: skip
        second = model.complete(convo, max_tokens=16)
        row = {
            "prompt_tokens_1": first.usage.prompt_tokens,
            "cached_1": first.usage.cached_tokens,
            "ttft_1": first.timings.time_to_first_token,
            "prompt_tokens_2": second.usage.prompt_tokens,
            "cached_2": second.usage.cached_tokens,
            "ttft_2": second.timings.time_to_first_token,
        }
        rows.append(row)
        print(f"  trial {i + 1}: first {row['prompt_tokens_1']} prompt tokens ({row['cached_1']} cached) "
              f"TTFT {row['ttft_1']:.3f}s; second {row['prompt_tokens_2']} ({row['cached_2']} cached) "
              f"TTFT {row['ttft_2']:.3f}s")  # fmt: skip
    med1 = statistics.median(r["ttft_1"] for r in rows)
    med2 = statistics.median(r["ttft_2"] for r in rows)
    return {"trials": rows, "median_ttft_first": med1, "median_ttft_second": med2, "ratio": med2 / med1}


def bench_flash_attn(model: EmbeddedModel, trials: int, tokens: int) -> dict[str, Any]:
    """Prompt evaluation (~1,000 tokens) and decode speed with flash attention off and on."""
    import dataclasses

    sides = {}
    for fa in (False, True):
        settings = dataclasses.replace(model.settings, flash_attn=fa)
        sides[fa] = EmbeddedModel(model.path, name=f"fa={fa}", settings=settings)
    rows: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for i in range(trials):
        for fa in (False, True) if i % 2 == 0 else (True, False):
            convo = [{"role": "system", "content": long_prefix(1000 + i)}, DECODE_PROMPT[1]]
            reply = sides[fa].complete(convo, max_tokens=tokens)
            ttft = reply.timings.time_to_first_token or 0.0
            n = reply.usage.completion_tokens or 0
            rows[fa].append({"prompt_tokens": reply.usage.prompt_tokens or 0, "ttft": ttft,
                             "decode_tps": (n - 1) / (reply.timings.total - ttft)})  # fmt: skip
            r = rows[fa][-1]
            print(f"  trial {i + 1} flash_attn={fa!s:5}: prompt {r['prompt_tokens']:.0f} tokens in {ttft:.2f}s "
                  f"({r['prompt_tokens'] / ttft:.0f} tok/s), decode {r['decode_tps']:.2f} tok/s")  # fmt: skip
    out: dict[str, Any] = {"trials": {str(k): v for k, v in rows.items()}}
    for fa in (False, True):
        out[f"median_prompt_tps_fa_{fa}"] = statistics.median(
            r["prompt_tokens"] / r["ttft"] for r in rows[fa]
        )
        out[f"median_decode_tps_fa_{fa}"] = statistics.median(r["decode_tps"] for r in rows[fa])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="embedded model name (default: the configured default)")
    parser.add_argument("--trials", type=int, default=7, help="decode rounds; prefix trials are half that")
    parser.add_argument("--tokens", type=int, default=64, help="tokens decoded per run")
    parser.add_argument("--flash-attn", action="store_true", help="run both sides with flash attention")
    parser.add_argument(
        "--compare-flash-attn", action="store_true", help="also measure flash attention off against on"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "model_speed.json")
    args = parser.parse_args()

    options = {"flash_attn": True} if args.flash_attn else {}
    # the same fixed thread count as the raw side; the adaptive default is measured alongside
    model = get_model(args.model, adaptive_threads=False, **options)
    adaptive = get_model(args.model, **options)
    if not isinstance(model, EmbeddedModel):
        parser.error(f"{model.name} is not an embedded model")
    raw = raw_llama(model)
    env = environment(model)
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("environment:", json.dumps(env, indent=2))

    print(f"\n[1] decode speed, {args.tokens} tokens, temperature 0, {args.trials} interleaved rounds")
    if not isinstance(adaptive, EmbeddedModel):
        parser.error(f"{adaptive.name} is not an embedded model")
    decode = bench_decode(model, adaptive, raw, args.trials, args.tokens)
    med = decode["medians"]
    print(
        f"  median tok/s: codeloop stream {med['codeloop stream']:.2f}, raw create_chat_completion "
        f"stream {med['raw stream']:.2f}, non-stream {med['raw whole']:.2f}; codeloop with adaptive "
        f"threads {med['codeloop adaptive']:.2f}"
    )
    print(f"  median of per-round ratios: codeloop/raw stream {decode['ratio']:.3f}, codeloop/raw "
          f"non-stream {decode['ratio_vs_whole']:.3f} (target >= 0.95); adaptive/raw stream "
          f"{decode['adaptive_vs_raw_stream']:.3f}")  # fmt: skip

    prefix_trials = max(3, args.trials // 2)
    print(f"\n[2] time to first token with a ~1,000-token shared prefix, {prefix_trials} trials")
    prefix = bench_prefix(model, prefix_trials)
    print(f"  median TTFT: first call {prefix['median_ttft_first']:.3f}s, second call "
          f"{prefix['median_ttft_second']:.3f}s, ratio {prefix['ratio']:.3f} (target <= 0.30)")  # fmt: skip
    results: dict[str, Any] = {"environment": env, "decode": decode, "prefix": prefix}
    if args.compare_flash_attn:
        print(f"\n[3] flash attention off vs on: ~1,000-token prompt, then {args.tokens} tokens")
        fa = results["flash_attn"] = bench_flash_attn(model, args.trials, args.tokens)
        for on in (False, True):
            print(f"  median flash_attn={on!s:5}: prompt {fa[f'median_prompt_tps_fa_{on}']:.0f} tok/s, "
                  f"decode {fa[f'median_decode_tps_fa_{on}']:.2f} tok/s")  # fmt: skip
    env["load_avg_1m_after"] = os.getloadavg()[0]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {args.out}")
    ok = min(decode["ratio"], decode["ratio_vs_whole"]) >= 0.95 and prefix["ratio"] <= 0.30
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
