"""Check many samples at once: one thread per worker, each driving its own sandbox session.

Threads are enough: the work happens in the sandbox's processes, and the sandbox is thread-safe.
Results come back as they finish, so the caller can save each one at once (resume) and tick
a progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from codeloop.evals.checker import CheckResult, check_sample
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import SessionFactory
from codeloop.evals.supply import SessionSupply

__all__ = ["check_all", "default_workers"]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_all(
    samples: Sequence[Sample],
    problems: Mapping[str, Problem],
    open_session: SessionFactory,
    *,
    timeout: float,
    workers: int | None = None,
) -> Generator[CheckResult, None, None]:
    """Yield the verdict on every sample, in the order they finish.

    Stopping early (an exception, Ctrl-C, or closing the iterator) cancels the checks not yet
    started and waits only for the running ones, which their timeout bounds.
    """
    if not samples:
        return
    count = min(workers or default_workers(), len(samples))
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="codeloop-check")
    futures: list[Future[CheckResult]] = []
    # Opening and closing sessions is mostly waiting (spawn, boot, stop), so keep more of them in
    # flight than there are checks; the checks themselves stay at one per worker.
    with SessionSupply(open_session, ahead=3 * count, openers=2 * count, closers=2 * count) as supply:
        try:
            for sample in samples:
                futures.append(pool.submit(check_sample, sample, problems[sample.task_id], supply, timeout=timeout))
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
