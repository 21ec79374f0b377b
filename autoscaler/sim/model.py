"""The app model, request by request: the one model of an app that the built-in ``sim`` app
(``autoscaler.sim.live``) and the exact trace simulator (``simulate --exact``) both run.

- ``WebPool``: instances with ``concurrency`` slots each. Each request is routed at random to
  one serving instance, as Heroku's router does, and waits in that instance's FIFO queue until
  one of its slots is free. A new instance serves only ``boot_s`` after it was added; a removed
  instance finishes what it was given and takes nothing new.
- ``WorkerPool``: instances with ``concurrency`` slots each pulling jobs from one FIFO queue.
- ``RequestLog``: queue times as a middleware sees them (recorded when a request starts), the
  number of requests waiting and in flight.

The fast model for sweeps (``autoscaler.sim.fast``) approximates the same app per time step.
Times are seconds on the simulation's own clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sequence

AGGREGATES = ("avg", "p50", "p90", "p95", "p99", "max")


def aggregate(values: Sequence[float], how: str) -> float:
    """``avg``, ``max`` or a nearest-rank percentile (``p95``) of a non-empty sequence."""
    if not values:
        raise ValueError("no values to aggregate")
    if how == "avg":
        return sum(values) / len(values)
    if how == "max":
        return max(values)
    if how not in AGGREGATES:
        raise ValueError(f"unknown aggregate {how!r}")
    ordered = sorted(values)
    rank = math.ceil(int(how[1:]) / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


class ServiceTimes:
    """Service times with mean ``mean_s`` and coefficient of variation ``cv`` (the spread):
    gamma-distributed (``cv`` 1 is the exponential, below 1 more regular, above 1 burstier),
    or constant when ``cv`` is 0."""

    __slots__ = ("_rng", "_scale", "_shape", "cv", "mean_s")

    def __init__(self, mean_s: float, cv: float, rng: random.Random) -> None:
        if mean_s <= 0 or cv < 0:
            raise ValueError("service time mean must be > 0 and its spread >= 0")
        self.mean_s = mean_s
        self.cv = cv
        self._shape = 1.0 / (cv * cv) if cv > 0 else 0.0
        self._scale = mean_s * cv * cv
        self._rng = rng

    def draw(self) -> float:
        if self._shape == 0.0:
            return self.mean_s
        if self._shape == 1.0:
            return self._rng.expovariate(1.0 / self.mean_s)
        return self._rng.gammavariate(self._shape, self._scale)


class _Instance:
    __slots__ = ("ready_at", "slots", "starts")

    def __init__(self, ready_at: float, concurrency: int) -> None:
        self.ready_at = ready_at
        self.slots = [ready_at] * concurrency  # a heap of the times each slot is next free
        # when the requests given to it start, the latest last (first in, first out: they only
        # grow), kept only while a router limit is set and only those not yet started
        self.starts: deque[float] = deque()


class _Pool:
    """What both pools are given: instances of ``concurrency`` slots, the service times of
    their work and the seconds a new instance takes to boot."""

    def __init__(
        self, quantity: int, *, concurrency: int, service: ServiceTimes, boot_s: float
    ) -> None:
        if concurrency < 1 or boot_s < 0 or quantity < 0:
            raise ValueError("concurrency must be >= 1, boot and quantity >= 0")
        self.concurrency = concurrency
        self.service = service
        self.boot_s = boot_s


class WebPool(_Pool):
    """A web process: random routing to serving instances, one FIFO queue per instance."""

    def __init__(
        self,
        quantity: int,
        *,
        concurrency: int,
        service: ServiceTimes,
        boot_s: float,
        rng: random.Random,
        now: float = 0.0,
        router_queue: int | None = None,
    ) -> None:
        super().__init__(quantity, concurrency=concurrency, service=service, boot_s=boot_s)
        if router_queue is not None and router_queue < 0:
            raise ValueError("router_queue must be >= 0")
        self._rng = rng
        self.router_queue = router_queue  # requests waiting per instance at most (None: no limit)
        self._serving = [_Instance(now, concurrency) for _ in range(quantity)]
        self._booting: deque[_Instance] = deque()  # in order of ready_at

    @property
    def quantity(self) -> int:
        return len(self._serving) + len(self._booting)

    def serving(self, t: float) -> int:
        self._promote(t)
        return len(self._serving)

    def scale(self, quantity: int, t: float) -> None:
        """Set the number of instances at time ``t``: new ones boot, the newest ones go first."""
        while self.quantity < quantity:
            self._booting.append(_Instance(t + self.boot_s, self.concurrency))
        while self.quantity > quantity:
            if self._booting:
                self._booting.pop()
            else:
                self._serving.pop()

    def _promote(self, t: float) -> None:
        booting = self._booting
        while booting and booting[0].ready_at <= t:
            self._serving.append(booting.popleft())

    def arrive(self, t: float) -> tuple[float, float] | None:
        """Route one request arriving at ``t``; return when it starts and when it finishes, or
        ``None`` when the instance it is routed to already has ``router_queue`` requests waiting
        (refused at once, as a router's full backlog refuses it)."""
        if self._booting and self._booting[0].ready_at <= t:
            self._promote(t)
        serving = self._serving
        if serving:
            inst = serving[int(self._rng.random() * len(serving))]
        elif self._booting:
            inst = self._booting[0]  # nothing serves yet: it waits for the first to boot
        else:
            raise ValueError("a request arrived at a process with no instances")
        slots = inst.slots
        free = slots[0]
        start = t if free < t else free
        limit = self.router_queue
        if limit is not None:
            waiting = inst.starts
            while waiting and waiting[0] <= t:
                waiting.popleft()
            if start > t:
                if len(waiting) >= limit:
                    return None
                waiting.append(start)
        finish = start + self.service.draw()
        heapq.heapreplace(slots, finish)
        return start, finish


class RequestLog:
    """What a queue-time middleware would have recorded: each request's queue time, known when
    it starts, plus arrivals, waiting and in-flight counts, and the time spent serving (per
    ``bucket_s`` of the clock). Keeps ``keep_s`` of history."""

    def __init__(self, keep_s: float = 3600.0, bucket_s: float = 1.0) -> None:
        self.keep_s = keep_s
        self.bucket_s = bucket_s
        self._busy: dict[int, float] = {}  # bucket -> seconds spent serving requests in it
        self._busy_low = 0  # buckets below this one are forgotten
        self._pending: list[tuple[float, float, float]] = []  # (start, finish, queue_s)
        self._started: deque[tuple[float, float]] = deque()  # (start, queue_s), by start
        self._running: list[float] = []  # finish times of started requests
        self._arrivals: deque[float] = deque()

    def add(self, arrival: float, start: float, finish: float) -> None:
        heapq.heappush(self._pending, (start, finish, start - arrival))
        self._arrivals.append(arrival)
        b, busy = self.bucket_s, self._busy
        j = int(start / b)
        while start < finish:  # the service time, cut at the buckets' edges
            edge = (j + 1) * b
            end = finish if finish < edge else edge
            busy[j] = busy.get(j, 0.0) + (end - start)
            start = end
            j += 1

    def advance(self, t: float) -> None:
        pending, started, running = self._pending, self._started, self._running
        while pending and pending[0][0] <= t:
            start, finish, queue_s = heapq.heappop(pending)
            started.append((start, queue_s))
            heapq.heappush(running, finish)
        while running and running[0] <= t:
            heapq.heappop(running)
        horizon = t - self.keep_s
        while started and started[0][0] < horizon:
            started.popleft()
        while self._arrivals and self._arrivals[0] < horizon:
            self._arrivals.popleft()
        low = int(horizon / self.bucket_s)
        while self._busy_low < low:
            self._busy.pop(self._busy_low, None)
            self._busy_low += 1

    def queue_times(self, t: float, window: float) -> list[float]:
        """Queue times (s) of the requests that started in ``(t - window, t]``."""
        self.advance(t)
        since = t - window
        out: list[float] = []
        for start, queue_s in reversed(self._started):
            if start <= since:
                break
            out.append(queue_s)
        return out

    def arrivals(self, t: float, window: float) -> int:
        since = t - window
        n = 0
        for a in reversed(self._arrivals):
            if a <= since:
                break
            if a <= t:
                n += 1
        return n

    def in_use(self, t: float, window: float) -> float:
        """Mean requests being served at once over the whole buckets in ``(t - window, t]``
        (busy seconds per second), as the middleware's busy time reports it."""
        self.advance(t)
        b = self.bucket_s
        last = int(t / b + 1e-9)  # the buckets before this one are complete at t
        first = int((t - window) / b + 1e-9)
        if last <= first:
            return 0.0
        busy = self._busy
        return sum(busy.get(j, 0.0) for j in range(first, last)) / ((last - first) * b)

    def waiting(self, t: float) -> int:
        self.advance(t)
        return len(self._pending)

    def busy(self, t: float) -> int:
        self.advance(t)
        return len(self._running)


class WorkerPool(_Pool):
    """A worker process: instances with ``concurrency`` slots each pulling jobs from one FIFO
    queue. Feed jobs in time order with ``enqueue``; read the queue with ``latency``."""

    def __init__(
        self,
        quantity: int,
        *,
        concurrency: int,
        service: ServiceTimes,
        boot_s: float,
        now: float = 0.0,
    ) -> None:
        super().__init__(quantity, concurrency=concurrency, service=service, boot_s=boot_s)
        self._next_id = 0
        self._alive: list[int] = []  # instance ids, oldest first
        self._slots: list[tuple[float, int]] = []  # heap of (free at, instance id)
        self._waiting: deque[float] = deque()  # arrival times of due jobs not started
        self._running: list[float] = []  # finish times
        self._t = now
        self.scale(quantity, now, boot_s=0.0)

    @property
    def quantity(self) -> int:
        return len(self._alive)

    def scale(self, quantity: int, t: float, boot_s: float | None = None) -> None:
        self.run_until(t)
        boot = self.boot_s if boot_s is None else boot_s
        while len(self._alive) < quantity:
            iid = self._next_id
            self._next_id += 1
            self._alive.append(iid)
            for _ in range(self.concurrency):
                heapq.heappush(self._slots, (t + boot, iid))
        while len(self._alive) > quantity:
            self._alive.pop()  # its slots are dropped when they come up; running jobs finish
        alive = set(self._alive)
        self._slots = [s for s in self._slots if s[1] in alive]
        heapq.heapify(self._slots)

    def run_until(self, t: float) -> None:
        """Start every job that a free slot takes by ``t``."""
        slots, waiting, running = self._slots, self._waiting, self._running
        while waiting and slots and slots[0][0] <= t:
            free, iid = heapq.heappop(slots)
            arrived = waiting.popleft()
            start = free if free > arrived else arrived
            finish = start + self.service.draw()
            heapq.heappush(slots, (finish, iid))
            heapq.heappush(running, finish)
        while running and running[0] <= t:
            heapq.heappop(running)
        self._t = max(self._t, t)

    def enqueue(self, t: float) -> None:
        """A job becomes due at ``t`` (calls must come in time order)."""
        self.run_until(t)
        self._waiting.append(t)
        self.run_until(t)

    def latency(self, t: float) -> float:
        """Age in seconds of the oldest due job still waiting at ``t`` (0 when none waits)."""
        self.run_until(t)
        return t - self._waiting[0] if self._waiting else 0.0

    def depth(self, t: float) -> int:
        self.run_until(t)
        return len(self._waiting)

    def busy(self, t: float) -> int:
        self.run_until(t)
        return len(self._running)
