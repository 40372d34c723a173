"""A real Ray cluster for the scale tests: one head on 127.0.0.1, 2 CPUs, token auth, stopped at the end.

The cluster is started once per test session (``ray start --head --block`` in its own process
group) and always stopped, whatever the tests did; the teardown fails the session if any of its
processes outlived the stop. The driver joins it with the cluster's token, set in this process's
environment only while the cluster is up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codeloop.evals.problems import Problem, load_humaneval
from codeloop.scale import LocalCluster, connect

# Ray reads this once, when first imported: the driver must know the cluster is loopback-only
# before anything imports ray, or it dials the machine's outward address instead of 127.0.0.1.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    pytest.importorskip("ray", reason="the ray extra is not installed (scripts/setup.sh --dev installs it)")
    home = tmp_path_factory.mktemp("codeloop-home-cluster")
    # The actors' user directory: a fresh one, as the tests' own (history, config) are.
    local = LocalCluster(num_cpus=2, object_store_mb=128, env={"CODELOOP_HOME": str(home)})
    local.start()
    try:
        yield local
    finally:
        local.stop()
        left = local.leftovers()
        assert not left, f"processes of the test cluster outlived its stop: {left}"


@pytest.fixture(scope="session")
def ray_driver(cluster: LocalCluster) -> Iterator[ModuleType]:
    """This process joined to the test cluster (with its token) for the whole session."""
    with cluster.driver_env():
        ray = connect(cluster.address)
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture(scope="session")
def problems() -> dict[str, Problem]:
    return load_humaneval()


@pytest.fixture
def canonical_samples(tmp_path: Path, problems: dict[str, Problem]) -> Path:
    """HumanEval's 164 canonical solutions as a samples file (all pass)."""
    path = tmp_path / "canonical.jsonl"
    records = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in problems.values()]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def codeloop_home(codeloop_home: Path) -> Path:
    """Every test's driver side runs in its own user dir (tests/conftest.py); the cluster's
    actors have theirs (``cluster`` above)."""
    return codeloop_home
