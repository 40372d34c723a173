"""Scale-out on Ray: evaluation and batch tasks across a cluster (``pip install 'codeloop[ray]'``).

>>> from codeloop.scale import RayEvalMap, RayOptions              # doctest: +SKIP
>>> with RayEvalMap.open(RayOptions("127.0.0.1:6379", cpus=1), model="smollm2-135m") as mapper:
...     report = run_humaneval(options, mapper=mapper)

A pool of Ray actors each holds its expensive state once (a loaded model or a server client,
and sandbox sessions); generation, checking and agent tasks are mapped over them and their
answers come back in order, so the files a run writes are those of a local run. Ray itself is
imported only when a cluster is joined. ``docs/scale.md`` has the whole story.
"""

from __future__ import annotations

from codeloop.scale.cluster import LocalCluster, connect
from codeloop.scale.errors import ScaleError
from codeloop.scale.pool import PoolStats, WorkerPool, plan_actors
from codeloop.scale.ray_map import RayEvalMap, RayOptions, RayTaskMap, open_pool
from codeloop.scale.worker import Worker, WorkerSpec

__all__ = [
    "LocalCluster",
    "PoolStats",
    "RayEvalMap",
    "RayOptions",
    "RayTaskMap",
    "ScaleError",
    "Worker",
    "WorkerPool",
    "WorkerSpec",
    "connect",
    "open_pool",
    "plan_actors",
]
