"""Load on ``codeloop serve``: many concurrent clients on loopback, each with its own session.

    .venv/bin/python bench/server_load.py [--clients 50] [--cells 100] [--json]

Every client creates a session, runs ``--cells`` small cells in it one after another (each
checks the state the previous one left), and deletes it; all clients run at once. Reported:
throughput (cells/s), p50/p99 latency of a run request, errors, and the sessions the server
still holds afterwards (must be 0). The floor, measured in the same run: the same clients and
cells through the Python API (``Sandbox.run`` from threads, no HTTP), so the ratio is the cost of
the HTTP face. The server is a real ``codeloop serve`` subprocess; the clients are one asyncio
process with httpx. A benchmark, not a test: it prints figures and never fails on a slow result
(it exits 1 only on errors or leaked sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def cell(i: int) -> str:
    """Cell ``i``: checks what cell ``i - 1`` left and leaves its own mark (state must persist)."""
    return f"assert n == {i - 1}, n\nn = {i}\nn * 2" if i else "n = 0\nn * 2"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def server_children(pid: int) -> int:
    """Processes under ``pid`` (sandbox workers, the pool's spares), read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return len(found)


# -- the server ---------------------------------------------------------------------------------


def start_server(max_sessions: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "codeloop", "serve", "--port", "0", "--max-sessions", str(max_sessions),
         "--max-body", str(1 << 20)],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stderr.read()}")
    return proc, line.split()[2].rstrip("/")


async def http_client(client: Any, cells: int, latencies: list[float], errors: list[str], *, run: bool) -> None:
    """One client: a session, ``cells`` requests in it (cell runs, or session-info reads), delete."""
    try:
        created = await client.post("/v1/sessions", json={"timeout": 30})
        if created.status_code != 201:
            errors.append(f"create: {created.status_code} {created.text[:200]}")
            return
        sid = created.json()["id"]
        for i in range(cells):
            start = time.perf_counter()
            if run:
                response = await client.post(f"/v1/sessions/{sid}/run", json={"code": cell(i)})
            else:
                response = await client.get(f"/v1/sessions/{sid}")
            latencies.append(time.perf_counter() - start)
            result = response.json() if response.status_code == 200 else {}
            if run and (result.get("status") != "ok" or result.get("value") != str(2 * i)):
                errors.append(f"run {i}: {response.status_code} {response.text[:200]}")
            elif not run and result.get("id") != sid:
                errors.append(f"info {i}: {response.status_code} {response.text[:200]}")
        deleted = await client.delete(f"/v1/sessions/{sid}")
        if deleted.status_code != 204:
            errors.append(f"delete: {deleted.status_code}")
    except Exception as e:  # count it, keep the other clients going
        errors.append(f"{type(e).__name__}: {e}")


async def http_load(url: str, clients: int, cells: int, *, run: bool = True) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(http_client(client, cells, latencies, errors, run=run) for _ in range(clients)))
        wall = time.perf_counter() - started
        left = (await client.get("/v1/sessions")).json()
    return {"wall_s": wall, "latencies": latencies, "errors": errors, "sessions_left": len(left)}


# -- the floor: the same work through the Python API ----------------------------------------------


def direct_load(clients: int, cells: int) -> dict[str, Any]:
    from codeloop.sandbox import Sandbox

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        try:
            with Sandbox(timeout=30) as sb:
                barrier.wait()
                for i in range(cells):
                    start = time.perf_counter()
                    r = sb.run(cell(i))
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        if r.status != "ok" or r.value != str(2 * i):
                            errors.append(f"run {i}: {r.status} {r.error}")
        except Exception as e:
            with lock:
                errors.append(f"{type(e).__name__}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()  # like the HTTP rows: session starts count
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    return {"wall_s": time.perf_counter() - started, "latencies": latencies, "errors": errors, "sessions_left": 0}


def summary(name: str, data: dict[str, Any], cells_total: int) -> dict[str, Any]:
    lat = data["latencies"]
    return {
        "name": name,
        "cells": len(lat),
        "wall_s": round(data["wall_s"], 3),
        "throughput_cells_per_s": round(cells_total / data["wall_s"], 1),
        "p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
        "p99_ms": round(1000 * percentile(lat, 99), 2) if lat else None,
        "errors": len(data["errors"]),
        "first_errors": data["errors"][:3],
        "sessions_left": data["sessions_left"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--no-floor", action="store_true", help="skip the Python API row")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"environment: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"uvicorn {version('uvicorn')}, fastapi {version('fastapi')}, httpx {version('httpx')}")  # fmt: skip
    total = args.clients * args.cells
    proc, url = start_server(max_sessions=args.clients + 8)
    try:
        before = server_children(proc.pid)
        http = summary("HTTP run (POST .../run)", asyncio.run(http_load(url, args.clients, args.cells)), total)
        floor = summary(
            "HTTP floor (GET session info)", asyncio.run(http_load(url, args.clients, args.cells, run=False)), total
        )
        time.sleep(1.0)  # let closed workers be reaped
        http["server_processes_before"] = before
        http["server_processes_after"] = server_children(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
        if proc.stderr is not None:
            proc.stderr.close()
    rows = [http, floor]
    if not args.no_floor:
        rows.append(summary("Python API (Sandbox.run, threads)", direct_load(args.clients, args.cells), total))
    print(f"\n{args.clients} clients x {args.cells} cells = {total} cells, all clients at once")
    print(f"{'path':<36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'left':>5}")
    for r in rows:
        print(f"{r['name']:<36} {r['throughput_cells_per_s']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['errors']:>6} {r['sessions_left']:>5}")  # fmt: skip
        for e in r["first_errors"]:
            print("   error:", e)
    print(f"server processes (sandbox workers and pool spares): {http['server_processes_before']} before, "
          f"{http['server_processes_after']} after")  # fmt: skip
    result: dict[str, Any] = {"clients": args.clients, "cells": args.cells, "rows": rows}
    ratio = rows[0]["throughput_cells_per_s"] / rows[1]["throughput_cells_per_s"]
    result["throughput_ratio_run_to_http_floor"] = round(ratio, 3)
    print(f"cell runs over HTTP = {ratio:.2f}x the throughput of a no-op request over the same HTTP stack")
    if len(rows) == 3:
        ratio = rows[0]["throughput_cells_per_s"] / rows[2]["throughput_cells_per_s"]
        result["throughput_ratio_http_to_api"] = round(ratio, 3)
        print(f"cell runs over HTTP = {ratio:.2f}x the throughput of the Python API (no HTTP), same run")
    if args.json:
        print(json.dumps(result))
    ok = all(r["errors"] == 0 and r["sessions_left"] == 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
