"""Check many samples at once: one thread per worker, each driving its own jailed sandbox session.

Threads are enough: the work happens in the sandbox's processes, and the sandbox is thread-safe.
Results come back as they finish, so the caller can save each one at once (resume) and tick
a progress bar.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from codeloop.evals.checker import CheckResult, check_sample
from codeloop.evals.errors import EvalError
from codeloop.evals.problems import Problem
from codeloop.evals.samples import Sample
from codeloop.evals.sessions import SessionFactory
from codeloop.evals.supply import SessionSupply
from codeloop.evals.zygote import ForkChecker

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
    fresh_sessions: bool = False,
) -> Generator[CheckResult, None, None]:
    """Yield the verdict on every sample, in the order they finish.

    Each worker thread holds one jailed template session and checks its samples in children
    forked from it (``zygote.py``); ``fresh_sessions=True`` starts a whole new session per sample
    instead (slower, the same isolation). Stopping early (an exception, Ctrl-C, or closing the
    iterator) lets each worker finish only the check it is running, which its timeout bounds.
    """
    if not samples:
        return
    count = min(workers or default_workers(), len(samples))
    if fresh_sessions:
        yield from _check_in_fresh_sessions(samples, problems, open_session, timeout=timeout, count=count)
        return
    todo: queue.SimpleQueue[Sample] = queue.SimpleQueue()
    for sample in samples:
        todo.put(sample)
    done: queue.SimpleQueue[CheckResult | BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            with ForkChecker(open_session, timeout=timeout) as checker:
                while not stop.is_set():
                    try:
                        sample = todo.get_nowait()
                    except queue.Empty:
                        break
                    done.put(checker.check(sample, problems[sample.task_id]))
        except BaseException as e:  # handed to the caller, raised there
            done.put(e)
        finally:
            done.put(None)

    threads = [threading.Thread(target=work, name=f"codeloop-check-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        running = count
        while running:
            item = done.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise EvalError(f"the sandbox failed while checking: {item}") from item
            else:
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _check_in_fresh_sessions(
    samples: Sequence[Sample],
    problems: Mapping[str, Problem],
    open_session: SessionFactory,
    *,
    timeout: float,
    count: int,
) -> Generator[CheckResult, None, None]:
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
