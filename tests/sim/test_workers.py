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
