"""The request-level app model: routing, per-instance FIFO queues, boot delays, worker queue."""

from __future__ import annotations

import random

import pytest

from autoscaler.sim.model import (
    RequestLog,
    ServiceTimes,
    WebPool,
    WorkerPool,
    aggregate,
)


def const(seconds: float) -> ServiceTimes:
    return ServiceTimes(seconds, 0.0, random.Random(0))


@pytest.mark.parametrize(
    ("values", "how", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], "avg", 2.5),
        ([1.0, 2.0, 3.0, 4.0], "max", 4.0),
        ([3.0, 1.0, 2.0, 4.0], "p50", 2.0),
        ([float(i) for i in range(1, 101)], "p95", 95.0),
        ([float(i) for i in range(1, 101)], "p99", 99.0),
        ([7.0], "p95", 7.0),
    ],
)
def test_aggregate(values: list[float], how: str, expected: float) -> None:
    assert aggregate(values, how) == expected


def test_aggregate_rejects_empty_and_unknown() -> None:
    with pytest.raises(ValueError):
        aggregate([], "p95")
    with pytest.raises(ValueError):
        aggregate([1.0], "p42")


def test_service_times_have_the_mean_and_spread() -> None:
    times = ServiceTimes(0.1, 1.0, random.Random(3))
    draws = [times.draw() for _ in range(100_000)]
    mean = sum(draws) / len(draws)
    sd = (sum((d - mean) ** 2 for d in draws) / len(draws)) ** 0.5
    assert mean == pytest.approx(0.1, rel=0.03)
    assert sd / mean == pytest.approx(1.0, rel=0.1)
    assert const(0.25).draw() == 0.25


def test_one_instance_queues_fifo_behind_its_slots() -> None:
    pool = WebPool(1, concurrency=2, service=const(1.0), boot_s=0, rng=random.Random(0))
    starts = [pool.arrive(0.0)[0] for _ in range(5)]
    assert starts == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert pool.arrive(10.0) == (10.0, 11.0)


def test_random_routing_spreads_requests_over_instances() -> None:
    pool = WebPool(4, concurrency=1, service=const(100.0), boot_s=0, rng=random.Random(1))
    waits = [pool.arrive(0.0)[0] for _ in range(400)]
    # every instance got some: exactly four requests started at once (one per instance)
    assert waits.count(0.0) == 4
    # and no instance got nearly all of them
    assert max(waits) < 100.0 * 200


def test_new_instances_serve_only_after_booting() -> None:
    pool = WebPool(1, concurrency=1, service=const(10.0), boot_s=20, rng=random.Random(0))
    pool.arrive(0.0)  # the one serving instance is busy until t=10
    pool.scale(2, 1.0)  # the new one is ready at t=21
    assert pool.quantity == 2
    assert pool.serving(5.0) == 1
    assert pool.arrive(5.0)[0] == 10.0  # routed to the only serving instance
    assert pool.serving(21.0) == 2
    pool.scale(1, 30.0)  # the newest goes first
    assert pool.quantity == 1


def test_requests_wait_for_the_first_booting_instance_when_none_serves() -> None:
    pool = WebPool(0, concurrency=1, service=const(1.0), boot_s=20, rng=random.Random(0))
    pool.scale(1, 0.0)
    assert pool.arrive(3.0) == (20.0, 21.0)


def test_a_router_limit_refuses_a_request_when_its_instance_has_as_many_waiting() -> None:
    """One slot, 1 s requests, at most 2 waiting: of four arriving at once, one starts, two
    wait (until 1 and 2) and the fourth is refused; once the first waiting one started, there
    is room again, behind the other."""
    pool = WebPool(
        1, concurrency=1, service=const(1.0), boot_s=0, rng=random.Random(0), router_queue=2
    )
    assert [pool.arrive(0.0) for _ in range(4)] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), None]
    assert pool.arrive(1.5) == (3.0, 4.0)
    assert pool.arrive(1.5) is None
    # no limit: it waits however long the queue is
    free = WebPool(1, concurrency=1, service=const(1.0), boot_s=0, rng=random.Random(0))
    assert [free.arrive(0.0)[0] for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        WebPool(
            1, concurrency=1, service=const(1.0), boot_s=0, rng=random.Random(0), router_queue=-1
        )


def test_request_log_sees_queue_times_when_requests_start() -> None:
    log = RequestLog()
    log.add(0.0, 0.0, 1.0)
    log.add(1.0, 5.0, 6.0)  # waits 4 s, starts at 5
    log.add(2.0, 2.5, 30.0)
    assert sorted(log.queue_times(3.0, 3.5)) == [0.0, 0.5]
    assert log.queue_times(3.0, 1.0) == [0.5]
    assert log.waiting(3.0) == 1
    assert log.busy(3.0) == 1  # the first finished at 1, the third runs until 30
    assert sorted(log.queue_times(6.0, 3.0)) == [4.0]
    assert log.arrivals(6.0, 10.0) == 3


def test_worker_latency_is_the_age_of_the_oldest_waiting_job() -> None:
    pool = WorkerPool(1, concurrency=1, service=const(10.0), boot_s=30)
    for t in (0.0, 1.0, 2.0):
        pool.enqueue(t)
    assert pool.latency(5.0) == 4.0  # job 1 waits since t=1 (job 0 runs)
    assert pool.depth(5.0) == 2
    assert pool.busy(5.0) == 1
    assert pool.latency(10.0) == 8.0  # job 1 started at 10; job 2 waits since 2
    pool.scale(2, 10.0)  # ready at 40
    assert pool.latency(20.0) == 0.0  # job 2 started at 20 on the first instance
    assert pool.depth(20.0) == 0


def test_worker_scale_down_drops_slots_but_lets_running_jobs_finish() -> None:
    pool = WorkerPool(2, concurrency=1, service=const(10.0), boot_s=0)
    pool.enqueue(0.0)
    pool.enqueue(0.0)
    assert pool.busy(1.0) == 2
    pool.scale(1, 1.0)
    pool.enqueue(2.0)
    pool.enqueue(2.0)
    assert pool.busy(5.0) == 2  # both first jobs still run
    assert pool.depth(11.0) == 1  # one instance left: one of the two new jobs waits
    assert pool.latency(11.0) == 9.0
