"""A pool of Ray actors, each a :class:`~codeloop.scale.worker.Worker`, and an ordered map over it.

``WorkerPool.map(method, items)`` keeps every actor busy (``depth`` calls queued on each, so an
actor never waits for the driver between calls) and yields the answers in the order of
``items``, whatever order they finish in. A call lost with its actor (the process was killed,
crashed, or its node went away) is handed to another actor: Ray restarts the dead one (its
``__init__`` builds its state again) and it rejoins the pool once it answers. Every item's
answer is yielded exactly once, so a caller that saves each answer as it comes neither loses
nor duplicates one. An error *raised* by the work itself (a model server refusing, say) is not
retried: it ends the map, as it would end a local run.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any

from codeloop.errors import CodeloopError
from codeloop.scale.errors import ScaleError
from codeloop.scale.worker import Worker, WorkerSpec

__all__ = ["PoolStats", "WorkerPool", "plan_actors"]


@dataclass
class PoolStats:
    """What happened in a pool: answers per actor, calls lost with a dead actor and redone."""

    answers: Counter[int] = field(default_factory=Counter)  # actor index -> answers it gave
    retried: int = 0  # calls lost with their actor and submitted again
    actor_losses: int = 0  # times an actor died under a call
    actors_dropped: int = 0  # actors gone for good (restarts used up)


def plan_actors(cluster_cpus: float, cpus_per_actor: float, actors: int | None) -> int:
    """How many actors to start: as asked, or as many as the cluster's CPUs hold."""
    if cpus_per_actor <= 0:
        raise ScaleError(f"--ray-cpus must be positive, got {cpus_per_actor:g}")
    fits = math.floor(cluster_cpus / cpus_per_actor + 1e-9)
    if actors is None:
        if fits < 1:
            raise ScaleError(f"the cluster has {cluster_cpus:g} CPUs: not enough for one actor of {cpus_per_actor:g}")
        return fits
    if actors < 1:
        raise ScaleError(f"--ray-actors must be at least 1, got {actors}")
    if actors > fits:
        raise ScaleError(
            f"{actors} actors of {cpus_per_actor:g} CPUs need {actors * cpus_per_actor:g} CPUs; the cluster has "
            f"{cluster_cpus:g}: ask for fewer actors (--ray-actors) or fewer CPUs each (--ray-cpus)"
        )
    return actors


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class WorkerPool:
    """``size`` actors of ``cpus`` CPUs each, built from ``spec`` and ready to take calls."""

    def __init__(
        self,
        ray: ModuleType,
        spec: WorkerSpec,
        *,
        size: int,
        cpus: float = 1.0,
        depth: int = 2,
        max_restarts: int = 3,
        max_attempts: int = 3,
        start_timeout: float = 600.0,
    ) -> None:
        self.ray = ray
        self.spec = spec
        self.depth = max(1, depth)
        self.max_attempts = max_attempts
        self.stats = PoolStats()
        remote = ray.remote(Worker)
        self.actors: list[Any] = [
            remote.options(num_cpus=cpus, max_restarts=max_restarts, max_task_retries=0).remote(spec) for _ in range(size)
        ]
        self.alive = set(range(size))
        try:
            self.infos: list[dict[str, Any]] = self._get([a.info.remote() for a in self.actors], timeout=start_timeout)
        except BaseException:
            self.close()
            raise

    def _get(self, refs: list[Any], *, timeout: float) -> list[Any]:
        ray = self.ray
        try:
            return list(ray.get(refs, timeout=timeout))
        except ray.exceptions.GetTimeoutError as e:
            raise ScaleError(
                f"the Ray actors did not start within {timeout:g} s (is the cluster big enough, and is codeloop "
                "installed on its nodes?)"
            ) from e
        except ray.exceptions.RayTaskError as e:
            raise self._cause(e) from e
        except ray.exceptions.RayError as e:
            raise ScaleError(f"a Ray actor failed to start: {_first_line(e)}") from e

    @staticmethod
    def _cause(error: Any) -> BaseException:
        """The error a call raised inside its actor, as codeloop's own when it is one of them."""
        cause = getattr(error, "cause", None)
        if isinstance(cause, CodeloopError):
            return cause
        return ScaleError(f"a Ray actor failed: {_first_line(cause if cause is not None else error)}")

    # -- the ordered map ---------------------------------------------------------------------------

    def map(self, method: str, items: Sequence[Any], *shared: Any) -> Generator[Any, None, None]:
        """``actor.method(*shared, item)`` for every item, answers yielded in the items' order."""
        ray = self.ray
        shared_refs = [ray.put(value) for value in shared]  # sent once, not once per call
        todo = list(range(len(items)))  # a heap: the earliest waiting item goes first
        heapq.heapify(todo)
        calls: dict[Any, tuple[int, int]] = {}  # ref -> (item index, actor index)
        load: Counter[int] = Counter()
        recovering: dict[int, float] = {}  # actor index -> when to ask whether it is back
        probes: dict[Any, int] = {}  # ref of a ready() call -> actor index
        attempts: Counter[int] = Counter()
        answers: dict[int, Any] = {}
        next_out = 0
        try:
            while next_out < len(items):
                for actor in sorted(self.alive - set(recovering), key=lambda a: load[a]):
                    while todo and load[actor] < self.depth:
                        index = heapq.heappop(todo)
                        ref = getattr(self.actors[actor], method).remote(*shared_refs, items[index])
                        calls[ref] = (index, actor)
                        load[actor] += 1
                now = time.monotonic()
                for actor, when in list(recovering.items()):
                    if when <= now and actor not in probes.values():
                        probes[self.actors[actor].ready.remote()] = actor
                if not self.alive:
                    raise ScaleError("every Ray actor of the pool died and none could be restarted")
                waiting = [*calls, *probes]
                if not waiting:
                    time.sleep(0.1)
                    continue
                done, rest = ray.wait(waiting, num_returns=1, timeout=0.5)
                if done and rest:  # take every answer already there, not one per round trip
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                    done += more
                for ref in done:
                    if ref in probes:
                        self._probe_answered(ref, probes.pop(ref), recovering)
                        continue
                    index, actor = calls.pop(ref)
                    load[actor] -= 1
                    try:
                        answers[index] = ray.get(ref)
                        self.stats.answers[actor] += 1
                    except ray.exceptions.RayTaskError as e:
                        raise self._cause(e) from e
                    except ray.exceptions.RayError as e:  # the actor (or its node) went away under the call
                        attempts[index] += 1
                        if attempts[index] >= self.max_attempts:
                            raise ScaleError(
                                f"item {index} was lost with its Ray actor {attempts[index]} times: {_first_line(e)}"
                            ) from e
                        heapq.heappush(todo, index)
                        self.stats.retried += 1
                        self._actor_lost(actor, e, recovering)
                while next_out in answers:
                    yield answers.pop(next_out)
                    next_out += 1
        finally:
            for ref in calls:
                try:
                    ray.cancel(ref)
                except Exception:  # already finished, or its actor is gone
                    pass

    def _actor_lost(self, actor: int, error: Any, recovering: dict[int, float]) -> None:
        if actor not in self.alive or actor in recovering:
            return
        self.stats.actor_losses += 1
        if isinstance(error, self.ray.exceptions.ActorDiedError):
            self.alive.discard(actor)
            self.stats.actors_dropped += 1
        else:  # restarting: ask again shortly whether it is back
            recovering[actor] = time.monotonic() + 0.5

    def _probe_answered(self, ref: Any, actor: int, recovering: dict[int, float]) -> None:
        ray = self.ray
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError:
            recovering.pop(actor, None)
            if actor in self.alive:
                self.alive.discard(actor)
                self.stats.actors_dropped += 1
        except ray.exceptions.RayError:
            recovering[actor] = time.monotonic() + 0.5  # still restarting
        else:
            recovering.pop(actor, None)  # back: it takes calls again

    # -- lifetime --------------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """The process ids of the live actors (they change when Ray restarts one)."""
        return [int(info["pid"]) for info in self._get([a.info.remote() for a in self.actors], timeout=60)]

    def close(self) -> None:
        """Stop every actor (its sandbox sessions go with its process)."""
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self.actors = []
        self.alive = set()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
