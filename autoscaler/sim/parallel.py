"""Running many replays of one prepared trace, in forked worker processes when more than one."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import signal
from collections.abc import Callable, Sequence

from autoscaler.sim.runner import PolicySpec, Prepared, Result, Setup, replay

_JOB: tuple[Prepared, Setup] | None = None  # set before forking workers


def _run_one(spec: PolicySpec, start: int = 0, stop: int | None = None) -> Result:
    assert _JOB is not None
    prepared, setup = _JOB
    return replay(prepared, setup, spec, start=start, stop=stop, series=stop is None)


def _worker_signals() -> None:
    """In a forked worker: the default SIGTERM, so that the pool's ``terminate`` ends it even
    when the parent had a handler of its own (``run`` in the same process, say)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def fork_pool(processes: int) -> multiprocessing.pool.Pool:
    """A pool of ``processes`` forked workers, each with the default SIGTERM and SIGINT whatever
    handlers this process has, so that the pool's ``terminate`` (the end of its ``with``
    block) ends them: a worker that inherited a handler which does not exit would wait for
    work for ever, and the pool with it."""
    return multiprocessing.get_context("fork").Pool(processes, initializer=_worker_signals)


def run_many(
    prepared: Prepared,
    setup: Setup,
    jobs: Sequence[tuple[PolicySpec, int, int | None]],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """Run ``(policy, start, stop)`` jobs, in ``workers`` forked processes when more than one."""
    global _JOB  # noqa: PLW0603 (read by forked workers without pickling the trace)
    _JOB = (prepared, setup)
    try:
        if len(jobs) == 1:  # one long run: show its own progress
            spec, start, stop = jobs[0]
            return [replay(prepared, setup, spec, start=start, stop=stop, progress=progress)]
        if workers <= 1:
            out = []
            for i, (spec, start, stop) in enumerate(jobs):
                out.append(_run_one(spec, start, stop))
                if progress:
                    progress(i + 1, len(jobs))
            return out
        with fork_pool(min(workers, len(jobs))) as pool:
            pending = [pool.apply_async(_run_one, job) for job in jobs]
            results = []
            for i, item in enumerate(pending):
                results.append(item.get())
                if progress:
                    progress(i + 1, len(jobs))
            return results
    finally:
        _JOB = None
