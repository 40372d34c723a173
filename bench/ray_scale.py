"""Scale-out benchmark: the same job here and on a local Ray cluster with 1 and 2 actors.

Two jobs, each run three ways (this process; Ray with 1 actor; Ray with 2 actors):

* ``check``: HumanEval's 164 canonical solutions checked (no model);
* ``generate``: ``--problems`` HumanEval problems generated with the tiny ``smollm2-135m`` model
  (plain mode, seeded, ``--max-tokens``) and checked.

It prints wall seconds of each, whether the results files are identical to the local run's
(timing fields aside), the overhead per task on Ray with one actor against the local run, the
measured per-actor rate, and the throughput a node would reach with one actor per CPU from that
rate. Cluster start and actor start (model load) are timed apart: they are paid once per run.

    .venv/bin/python bench/ray_scale.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/ray_scale.py --problems 10

A benchmark, not a test: it prints figures, and fails only when results differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before anything imports ray

from codeloop.evals import GenerationSettings, HumanEvalOptions, load_humaneval, run_humaneval
from codeloop.scale import LocalCluster, RayEvalMap, RayOptions, connect


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _files(out: Path, generated: bool) -> list[list[dict[str, Any]]]:
    results = Path(str(out) + "_results.jsonl")
    return [_rows(out), _rows(results)] if generated else [_rows(results)]


def run_job(kind: str, work: Path, label: str, mapper: RayEvalMap | None, args: argparse.Namespace, model: Any) -> tuple[float, Path]:
    problems = load_humaneval()
    if kind == "check":
        out = work / f"check-{label}.jsonl"
        out.write_text("".join(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n" for p in problems.values()))
        options = HumanEvalOptions(samples=out, progress=False, ks=(1,), workers=1)  # one checker, as one actor
        started = time.perf_counter()
        run_humaneval(options, mapper=mapper)
        return time.perf_counter() - started, out
    out = work / f"gen-{label}.jsonl"
    options = HumanEvalOptions(
        out=out, limit=args.problems, ks=(1,), workers=1, progress=False, generation=GenerationSettings(max_tokens=args.max_tokens, seed=0)
    )
    started = time.perf_counter()
    if mapper is None:
        run_humaneval(options, model=model, model_name=model.name)
    else:
        run_humaneval(options, mapper=mapper)
    return time.perf_counter() - started, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=8, help="problems generated in the generate job (default 8)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local cluster (default 2)")
    args = parser.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    from codeloop.llm import get_model

    model = get_model("smollm2-135m", n_threads=1)
    figures: dict[str, dict[str, float]] = {}
    same = True
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        work = Path(tmp)
        local: dict[str, tuple[float, Path]] = {}
        for kind in ("check", "generate"):
            local[kind] = run_job(kind, work, "local", None, args, model)
            figures.setdefault(kind, {})["local"] = local[kind][0]
            print(f"{kind:9s} local            {local[kind][0]:7.2f} s")
        started = time.perf_counter()
        with LocalCluster(num_cpus=args.cpus) as cluster:
            print(f"cluster start (ray start --head, {args.cpus} CPUs): {time.perf_counter() - started:.1f} s")
            with cluster.driver_env():
                ray = connect(cluster.address)
                try:
                    for actors in (1, 2):
                        t0 = time.perf_counter()
                        with RayEvalMap.open(RayOptions(cluster.address, actors=actors, cpus=1), model="smollm2-135m") as mapper:
                            print(f"{actors} actor(s) started, model loaded: {time.perf_counter() - t0:.1f} s")
                            for kind in ("check", "generate"):
                                seconds, out = run_job(kind, work, f"ray{actors}", mapper, args, None)
                                match = _files(out, kind == "generate") == _files(local[kind][1], kind == "generate")
                                same &= match
                                figures[kind][f"ray{actors}"] = seconds
                                print(f"{kind:9s} ray, {actors} actor(s)  {seconds:7.2f} s   results identical to local: {match}")
                finally:
                    ray.shutdown()
    tasks = {"check": 164, "generate": 2 * args.problems}  # generate: each problem is generated, then checked
    print()
    print("| job | local | Ray, 1 actor | Ray, 2 actors | overhead per task (1 actor vs local) | per-actor rate | projected per node (1 actor per CPU) |")
    print("|---|---|---|---|---|---|---|")
    for kind, f in figures.items():
        n = tasks[kind]
        overhead_ms = (f["ray1"] - f["local"]) / n * 1000
        rate = n / f["ray1"]
        print(
            f"| {kind} ({n} calls) | {f['local']:.2f} s | {f['ray1']:.2f} s | {f['ray2']:.2f} s "
            f"({f['ray1'] / f['ray2']:.2f}x of 1 actor) | {overhead_ms:+.1f} ms | {rate:.2f} calls/s "
            f"| {rate * args.cpus:.2f} calls/s on {args.cpus} CPUs, {rate * 16:.1f} on 16 |"
        )
    print(f"\nresults identical on Ray and locally: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
