"""Decisions per second of the policy engine on one core.

    .venv/bin/python benchmarks/bench_policy.py

Prints the rate for one process deciding tick after tick, for one web process whose source
reports the arrival rate and the requests in service (every feature on: what one instance
carries and the early signal's limit learned, the forecast, the sized upscales and downscales
and the stabilisation window running every tick), for one worker process (the job steps, with
the jobs ended between readings), and for 1,000 processes per tick, over
signals that cross the band both ways so that every branch runs. Each figure is the median of
five runs, with the lowest and highest, and the load average before and after (the machine
may be shared: wall-clock rates fall with it).
"""

from __future__ import annotations

import os
import time

from autoscaler.model import Instant, Observation, Status
from autoscaler.policy import PolicyConfig, PolicyState, decide

SIGNALS = [10.0, 30.0, 120.0, 250.0, 600.0, 180.0, 40.0, 20.0, None, 5.0]
STATUSES = [Status.OK] * 8 + [Status.MISSING, Status.OK]


def one_process(n: int) -> float:
    cfg = PolicyConfig(low=1, high=50, up_cooldown=30.0, down_delay=60.0)
    obs = [Observation(5, s, st) for s, st in zip(SIGNALS, STATUSES, strict=True)]
    state = PolicyState()
    start = time.perf_counter()
    for i in range(n):
        o = obs[i % 10]
        decision, state = decide(cfg, state, o, Instant(i * 5.0, 1.7e9 + i * 5.0))
        o.current = decision.desired
    return n / (time.perf_counter() - start)


def web_with_forecast(n: int) -> float:
    """One web process whose source reports the arrival rate and the requests in service: the
    policy learns what an instance carries and how many it serves at once (settled readings
    into the load bins), and the forecast and the early signal run every tick."""
    cfg = PolicyConfig(low=1, high=50)  # DOWN_DELAY at its default
    state = PolicyState()
    obs = Observation(5, 0.0, Status.OK)
    start = time.perf_counter()
    for i in range(n):
        # levels, and swings within the count noise of two windows a tick apart
        rate = 100.0 + 40.0 * ((i // 200) % 7) - 1.0 * (i % 3)
        per_instance = rate / max(obs.current, 1)
        # an app whose instances carry 25 requests/s at 200 ms, and a spike now and then
        obs.signal_ms = 200.0 * (per_instance / 25.0) ** 2 if i % 97 else 450.0
        obs.rate_per_s = rate
        obs.in_use = rate * 0.1  # 100 ms per request
        decision, state = decide(cfg, state, obs, Instant(i * 5.0, 1.7e9 + i * 5.0))
        obs.current = decision.desired
    if state.capacity is None or not state.sure:
        raise SystemExit("the forecast never learned what an instance carries")
    return n / (time.perf_counter() - start)


def worker_with_jobs(n: int) -> float:
    """One worker process (a job source: the oldest due job's age, the due and running jobs,
    the jobs ended since the last reading) that may scale to zero: jobs come in waves, slots
    are learned, and the idle, jobs-ended, down and up steps all run."""
    cfg = PolicyConfig(
        "worker", low=0, high=50, up_ms=10_000.0, down_ms=2_000.0, scale_from_zero=True
    )
    state = PolicyState()
    obs = Observation(0, 0.0, Status.OK, depth=0, busy=0, finished=0)
    start = time.perf_counter()
    for i in range(n):
        phase = i % 400
        cur = obs.current
        if phase < 60:  # a wave: jobs wait, every slot busy
            obs.depth, obs.busy = 40 - phase // 2, 5 * cur
            obs.signal_ms = 1000.0 * (30 - phase // 2)
        elif phase < 200:  # short jobs that end between readings
            obs.depth, obs.busy, obs.signal_ms = 0, 0, 0.0
        else:  # idle
            obs.depth, obs.busy, obs.signal_ms = 0, 0, 0.0
        obs.finished = 3 if phase < 200 else 0
        decision, state = decide(cfg, state, obs, Instant(i * 5.0, 1.7e9 + i * 5.0))
        obs.current = decision.desired
    if state.slots is None:
        raise SystemExit("the worker never learned its slots")
    return n / (time.perf_counter() - start)


def many_processes(processes: int, ticks: int) -> float:
    cfgs = [PolicyConfig(f"p{i}", low=1, high=50) for i in range(processes)]
    states = [PolicyState() for _ in range(processes)]
    obs = [Observation(5, 0.0) for _ in range(processes)]
    start = time.perf_counter()
    for t in range(ticks):
        now = Instant(t * 5.0, 1.7e9 + t * 5.0)
        signal = SIGNALS[t % 10]
        status = STATUSES[t % 10]
        for i in range(processes):
            o = obs[i]
            o.signal_ms, o.status = signal, status
            decision, states[i] = decide(cfgs[i], states[i], o, now)
            o.current = decision.desired
    return processes * ticks / (time.perf_counter() - start)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core
    before = os.getloadavg()
    one_process(20_000)  # warm up
    one = sorted(one_process(300_000) for _ in range(5))
    web = sorted(web_with_forecast(300_000) for _ in range(5))
    many = sorted(many_processes(1_000, 300) for _ in range(5))
    worker = sorted(worker_with_jobs(300_000) for _ in range(5))
    for name, runs in (
        ("one process", one),
        ("one web process, every feature on", web),
        ("one worker process (job steps, jobs ended between readings)", worker),
        ("1,000 processes per tick", many),
    ):
        print(
            f"{name}: {runs[2]:,.0f} decisions/s (median of 5; {runs[0]:,.0f} to {runs[-1]:,.0f})"
        )
    print(f"1,000 processes: {1_000 / many[2] * 1000:.2f} ms per tick")
    after = os.getloadavg()
    print(f"load average (1 min) before {before[0]:.2f}, after {after[0]:.2f}")


if __name__ == "__main__":
    main()
