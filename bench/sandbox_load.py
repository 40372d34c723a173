"""Load test of the sandbox: parallel sessions, mixed cells, and nothing lost, mixed up or left behind.

N sessions (threads of this process, each with its own ``Sandbox``) run M cells each, a seeded mix
of ok cells (print a unique token, return a number), errors (raise with the token), timeouts (print
the token, then sleep past a short limit) and crashes (print the token, then SIGKILL themselves).
Checked for every cell: its own token and no other in its output (no cross-talk), the expected
status, value or error (no lost or confused results). Checked afterwards: no process of the run is
left (no descendant of this process, nothing running as a session uid), no session directory under
the run's own root, no session cgroup, no uid lock file left. Prints the command, the environment,
cells/s and latency percentiles per kind. Not a timed test: run it under the bench lock,

    flock /tmp/codeloop-bench.lock .venv/bin/python bench/sandbox_load.py [--sessions 8] [--cells 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from codeloop.sandbox import Sandbox
from codeloop.sandbox.hostfs import remove_tree
from codeloop.sandbox.jail import cgroups

KINDS = {"ok": 0.88, "error": 0.08, "timeout": 0.02, "crash": 0.02}


def cell_for(kind: str, token: str, n: int) -> str:
    if kind == "ok":
        return f"print({token!r})\n{n} * 2"
    if kind == "error":
        return f"raise ValueError({token!r})"
    if kind == "timeout":
        return f"import time\nprint({token!r}, flush=True)\ntime.sleep(30)"
    return f"import os\nprint({token!r}, flush=True)\nos.kill(os.getpid(), 9)"


def check(kind: str, token: str, n: int, r: object, all_tokens: set[str]) -> str | None:
    """None when the result is exactly what the cell must give; else what is wrong."""
    from codeloop.sandbox import RunResult

    assert isinstance(r, RunResult)
    text = r.stdout + r.stderr + (r.value or "") + (r.error.evalue if r.error else "")
    foreign = [t for t in all_tokens if t != token and t in text]
    if foreign:
        return f"cross-talk: output of {len(foreign)} other cell(s)"
    if kind == "ok" and (r.status != "ok" or r.stdout != token + "\n" or r.value != str(n * 2)):
        return f"ok cell came back as {r.status} {r.stdout!r} {r.value!r}"
    if kind == "error" and (r.status != "error" or r.error is None or r.error.evalue != token):
        return f"error cell came back as {r.status} {r.error}"
    if kind == "timeout" and (r.status != "timeout" or r.stdout != token + "\n" or not r.restarted):
        return f"timeout cell came back as {r.status} {r.stdout!r}"
    if kind == "crash" and (r.status != "crashed" or r.stdout != token + "\n" or not r.restarted):
        return f"crash cell came back as {r.status} {r.stdout!r}"
    return None


def children_of(root: int) -> set[int]:
    tree: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                tree[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in tree.items() if ppid in frontier} - found
        found |= frontier
    return found


def session_uid_processes(ours: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    uid = int(line.split()[1])
                    if uid in ours:
                        found.append(int(entry.name))
        except (OSError, ValueError):
            pass
    return found


def session_cgroups() -> list[str]:
    root, _why = cgroups.find_root()
    if root is None:
        return []
    left = []
    for mount in root.mounts.values():
        for parent in mount.rglob(f"codeloop-{os.getpid()}-*"):  # codeloop-<pid>-<token>
            left += [str(d) for d in parent.iterdir() if d.is_dir()]
    return left


def lock_files(ours: set[int]) -> list[str]:
    names = {f"{uid}.lock" for uid in ours}
    found: list[str] = []
    for d in (Path("/run/codeloop/uids"), Path("/tmp/codeloop-root-uids")):
        try:
            found += [str(p) for p in d.iterdir() if p.name in names]
        except OSError:
            pass
    return found


def run_session(index: int, args: argparse.Namespace, root: Path, out: dict[str, object]) -> None:
    rng = random.Random(args.seed * 1000 + index)
    kinds = rng.choices(list(KINDS), weights=list(KINDS.values()), k=args.cells)
    latencies: dict[str, list[float]] = defaultdict(list)
    problems: list[str] = []
    tokens = [uuid.uuid4().hex for _ in kinds]
    all_tokens = set(tokens)
    done = 0
    with Sandbox(timeout=args.cell_timeout, root=root, memory_mb=512) as sb:
        lease = sb._res.uid_lease  # the session uid (one for the session's whole life, restarts included)
        uid = lease.uid if lease is not None else None
        for n, (kind, token) in enumerate(zip(kinds, tokens, strict=True)):
            start = time.perf_counter()
            r = sb.run(cell_for(kind, token, n))
            latencies[kind].append(time.perf_counter() - start)
            done += 1
            wrong = check(kind, token, n, r, all_tokens)
            if wrong:
                problems.append(f"session {index} cell {n} ({kind}): {wrong}")
        end_lease = sb._res.uid_lease
        if (end_lease.uid if end_lease is not None else None) != uid:
            problems.append(f"session {index} changed its uid")
    out[f"s{index}"] = {"latencies": latencies, "problems": problems, "done": done, "uid": uid}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--cell-timeout", type=float, default=0.5, help="limit of every cell (the timeout cells pass it)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("CODELOOP_HOME", tempfile.mkdtemp(prefix="codeloop-bench-home-"))
    print("command:", shlex.join([sys.executable, *sys.argv]))
    root = Path(tempfile.mkdtemp(prefix="codeloop-load-root-"))
    with Sandbox() as probe:
        isolation = probe.isolation
    print("environment:", json.dumps({
        "python": sys.version.split()[0], "platform": platform.platform(), "cores": len(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(), "isolation": {k: v for k, v in isolation.items()},
        "sessions": args.sessions, "cells_per_session": args.cells, "mix": KINDS, "cell_timeout": args.cell_timeout,
    }))  # fmt: skip
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            run_session(i, args, root, results)
        except BaseException as e:  # reported below: a session that raised lost its results
            errors.append(e)

    start = time.perf_counter()
    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(args.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    from codeloop.sandbox.pool import POOL

    POOL.shutdown()  # the spare workers too: the leak checks below must see nothing of ours
    time.sleep(0.5)  # SIGKILLed processes finish dying
    problems: list[str] = [f"a session raised {e!r}" for e in errors]
    latencies: dict[str, list[float]] = defaultdict(list)
    done = 0
    ours: set[int] = set()
    for value in results.values():
        assert isinstance(value, dict)
        if value["uid"] is not None:
            ours.add(value["uid"])
        problems += value["problems"]
        done += value["done"]
        for kind, values in value["latencies"].items():
            latencies[kind] += values
    expected = args.sessions * args.cells
    if done != expected:
        problems.append(f"lost results: {done} of {expected} cells came back")
    leaks = {
        "processes (descendants of this process)": sorted(children_of(os.getpid())),
        "processes running as this run's session uids": session_uid_processes(ours),
        "session directories": sorted(p.name for p in root.iterdir()),
        "session cgroups": session_cgroups(),
        "uid lock files of this run's uids": sorted(lock_files(ours)),
    }
    remove_tree(root)
    everything = [v for values in latencies.values() for v in values]
    counts = Counter({k: len(v) for k, v in latencies.items()})
    print(f"\n{done} cells in {wall:.1f} s: {done / wall:.1f} cells/s over {args.sessions} parallel sessions")
    print(f"kinds: {dict(counts)}")
    print(f"latency all:      p50 {1000 * pct(everything, 0.5):7.1f} ms   p99 {1000 * pct(everything, 0.99):7.1f} ms")
    for kind in KINDS:
        if latencies[kind]:
            vals = latencies[kind]
            print(f"latency {kind:8s}: p50 {1000 * pct(vals, 0.5):7.1f} ms   p99 {1000 * pct(vals, 0.99):7.1f} ms"
                  f"   mean {1000 * statistics.mean(vals):7.1f} ms")  # fmt: skip
    for name, found in leaks.items():
        print(f"left behind, {name}: {len(found)}" + (f" {found[:10]}" if found else ""))
        if found:
            problems.append(f"leaked {name}: {found[:10]}")
    print(f"problems: {len(problems)}")
    for p in problems[:20]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
