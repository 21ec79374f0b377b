"""Forked workers of ``simulate`` and ``tune`` end with the run, whatever the parent process
was doing when it forked them: a SIGTERM handler of its own (``run`` in the same process, a
server library) and a stream that another thread held locked."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from pathlib import Path

import pytest

from autoscaler.policy import PolicyConfig
from autoscaler.sim.commands import run_many
from autoscaler.sim.parallel import fork_pool
from autoscaler.sim.runner import PolicySpec, Setup, prepare
from autoscaler.sim.traces import read_trace

from .forking import stdio_stuck_in_children

DATA = Path(__file__).parent.parent / "data" / "traces"


def test_pool_workers_end_with_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    setup = Setup(peak_instances=5)
    prepared = prepare(read_trace(DATA / "nasa-slice-2h.csv.gz"), setup)
    jobs = [
        (PolicySpec(name, 1, 40, PolicyConfig(high=40) if name == "default" else None), 0, None)
        for name in ("default", "static", "hpa", "oracle")
    ]
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a handler that does not exit
    stdio_stuck_in_children(monkeypatch)
    try:
        done: list[int] = []
        runner = threading.Thread(
            target=lambda: done.append(len(run_many(prepared, setup, jobs, 2))), daemon=True
        )
        runner.start()
        runner.join(60)
        assert done == [4]
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in multiprocessing.active_children():  # whatever the run left behind
            child.kill()


def _sigterm_is_default(_: int) -> bool:
    return signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_fork_pools_workers_end_on_sigterm_whatever_handler_this_process_has() -> None:
    """The pool's ``terminate`` (the end of its ``with`` block) sends SIGTERM to workers that
    may be waiting for work no one will send (it may have drained their queue first): a
    handler inherited from this process that does not exit would keep them, and the pool."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a handler that does not exit
    try:
        with fork_pool(2) as pool:
            assert pool.map(_sigterm_is_default, range(4), chunksize=1) == [True] * 4
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in multiprocessing.active_children():
            child.kill()
