"""The worker model: job queues drained by worker instances, job by job.

- Instances have ``concurrency`` slots each. A new instance takes jobs ``boot_s`` after it was
  added and is paid for from the start.
- Each queue is FIFO. A free slot takes the head of the first non-empty queue in the order the
  queues were first seen (as ``rq worker high default low`` does); of several free slots, the
  one idle longest takes the next job (as Redis serves blocked ``BLPOP`` clients).
- A downscale stops instances the way Heroku does: the highest-numbered (the newest) get SIGTERM,
  take no new job, and leave when their jobs are done or after ``grace_s`` (30 s), when a job
  still running is interrupted: it goes back to the head of its queue (keeping its due time) and
  the work it had done is counted as lost. A booting instance stops at once.
- The signal is what the job sources compute: the age of the oldest due job (the max over
  queues), the depth (due jobs waiting) and busy (jobs running, on stopping instances too).

Times are seconds on the simulation's clock (0 = the trace's start).
"""

from __future__ import annotations

import heapq
import math
from collections import deque

_DONE, _READY, _KILL = 0, 1, 2


class Job:
    __slots__ = ("due", "duration", "enq", "inst", "queue", "start", "token", "waited")

    def __init__(self, due: float, duration: float, queue: int) -> None:
        self.due = due  # when it became due (kept when it is put back)
        self.duration = duration
        self.queue = queue
        self.enq = due  # when it was last put on the queue
        self.waited = 0.0  # seconds spent in the queue so far
        self.start = 0.0
        self.token = 0  # bumped when a run is cut short: its completion event is void
        self.inst: Instance | None = None  # where it runs


class Instance:
    __slots__ = ("created", "ended", "jobs", "number", "ready", "ready_at", "stopping")

    def __init__(self, number: int, created: float, ready_at: float) -> None:
        self.number = number
        self.created = created
        self.ready_at = ready_at
        self.ready = False
        self.stopping: float | None = None
        self.ended: float | None = None
        self.jobs: set[Job] = set()


class WorkerModel:
    """Replays ``jobs`` (sorted by due time) through a pool of worker instances."""

    def __init__(
        self,
        jobs: list[Job],
        nqueues: int,
        *,
        concurrency: int,
        boot_s: float,
        quantity: int,
        grace_s: float = 30.0,
        stop_idle_only: bool = False,
        minute_s: float = 60.0,
    ) -> None:
        if concurrency < 1 or boot_s < 0 or quantity < 0 or grace_s < 0:
            raise ValueError("concurrency must be >= 1; boot, grace and quantity >= 0")
        self.jobs = jobs
        self.concurrency = concurrency
        self.boot_s = boot_s
        self.grace_s = grace_s
        self.stop_idle_only = stop_idle_only  # the oracle's privilege: it never interrupts
        self.minute_s = minute_s
        self.queues: list[deque[Job]] = [deque() for _ in range(max(nqueues, 1))]
        self.waiting = 0
        self.running = 0
        self.alive: list[Instance] = []  # not stopping, in order of number
        self.serving = 0  # of them, those booted (what the platform reports as ready)
        self.idle: deque[Instance] = deque()  # one entry per free slot, idle longest first
        self.events: list[tuple[float, int, int, object, int]] = []
        self._seq = 0
        self._pending = 0  # READY and KILL events not yet played
        self._next = 0  # index of the next job to arrive
        self._number = 0
        self.now = 0.0
        # figures
        self.paid_s = 0.0
        self.ended: list[Instance] = []
        self.waits: list[float] = []  # per finished job: seconds in the queue
        self.done = 0
        self.interrupted = 0
        self.interrupted_s = 0.0
        self.minute_age: dict[int, float] = {}  # minute -> highest oldest-job age (s)
        self.minute_interrupts: dict[int, int] = {}
        for _ in range(quantity):
            inst = self._new(0.0, 0.0)
            self._ready(inst, 0.0)

    # --- the platform's side -----------------------------------------------------------------

    @property
    def quantity(self) -> int:
        return len(self.alive)

    def _new(self, t: float, boot: float) -> Instance:
        self._number += 1
        inst = Instance(self._number, t, t + boot)
        self.alive.append(inst)
        return inst

    def _push(self, t: float, kind: int, what: object, token: int = 0) -> None:
        self._seq += 1
        if kind != _DONE:
            self._pending += 1
        heapq.heappush(self.events, (t, self._seq, kind, what, token))

    def scale(self, quantity: int, t: float) -> int:
        """Set the number of instances at ``t``; returns the number now running (the oracle's
        model stops only idle instances, so it may keep more than asked)."""
        self.advance(t)
        while len(self.alive) < quantity:
            inst = self._new(t, self.boot_s)
            if self.boot_s > 0:
                self._push(inst.ready_at, _READY, inst)
            else:
                self._ready(inst, t)
        if len(self.alive) > quantity:
            if self.stop_idle_only:
                # booting or idle instances only, the newest first
                victims = [i for i in reversed(self.alive) if not i.jobs]
                victims = victims[: len(self.alive) - quantity]
            else:
                victims = self.alive[quantity:][::-1]
            for inst in victims:
                self._stop(inst, t)
        return len(self.alive)

    def _stop(self, inst: Instance, t: float) -> None:
        self.alive.remove(inst)
        if inst.ready:
            self.serving -= 1
        inst.stopping = t
        if not inst.jobs:
            self._end(inst, t)
        else:
            self._push(t + self.grace_s, _KILL, inst)

    def _end(self, inst: Instance, t: float) -> None:
        inst.ended = t
        self.paid_s += t - inst.created
        self.ended.append(inst)

    def _ready(self, inst: Instance, t: float) -> None:
        if inst.stopping is not None:
            return
        inst.ready = True
        self.serving += 1
        self.idle.extend([inst] * self.concurrency)
        self._dispatch(t)

    def _kill(self, inst: Instance, t: float) -> None:
        if inst.ended is not None:
            return
        minute = int(t // self.minute_s)
        for job in sorted(inst.jobs, key=lambda j: j.due, reverse=True):
            self.interrupted += 1
            self.interrupted_s += t - job.start
            self.minute_interrupts[minute] = self.minute_interrupts.get(minute, 0) + 1
            job.token += 1
            job.enq = t
            self.queues[job.queue].appendleft(job)
            self.waiting += 1
            self.running -= 1
        inst.jobs.clear()
        self._end(inst, t)
        self._dispatch(t)

    # --- the jobs' side ----------------------------------------------------------------------

    def _take(self) -> Job:
        for q in self.queues:
            if q:
                self.waiting -= 1
                return q.popleft()
        raise AssertionError("no job waiting")

    def _start(self, job: Job, inst: Instance, t: float) -> None:
        job.waited += t - job.enq
        age = t - job.due
        minute = int(t // self.minute_s)
        if age > self.minute_age.get(minute, 0.0):
            self.minute_age[minute] = age
        job.start = t
        job.inst = inst
        inst.jobs.add(job)
        self.running += 1
        self._push(t + job.duration, _DONE, job, job.token)

    def _dispatch(self, t: float) -> None:
        idle = self.idle
        while self.waiting and idle:
            inst = idle.popleft()
            if inst.stopping is not None:
                continue
            self._start(self._take(), inst, t)

    def _finish(self, job: Job, t: float) -> None:
        inst = job.inst
        assert inst is not None
        inst.jobs.discard(job)
        self.running -= 1
        self.done += 1
        self.waits.append(job.waited)
        if inst.stopping is not None:
            if not inst.jobs:
                self._end(inst, t)
        elif self.waiting:
            self._start(self._take(), inst, t)
        else:
            self.idle.append(inst)

    def advance(self, t: float) -> None:
        """Play every arrival and event up to and including ``t``."""
        jobs, events = self.jobs, self.events
        n = len(jobs)
        while True:
            nxt = jobs[self._next].due if self._next < n else math.inf
            if events and events[0][0] <= nxt and events[0][0] <= t:
                at, _, kind, what, token = heapq.heappop(events)
                if kind == _DONE:
                    job = what
                    assert isinstance(job, Job)
                    if token == job.token:
                        self._finish(job, at)
                elif kind == _READY:
                    assert isinstance(what, Instance)
                    self._pending -= 1
                    self._ready(what, at)
                else:
                    assert isinstance(what, Instance)
                    self._pending -= 1
                    self._kill(what, at)
            elif nxt <= t:
                job = jobs[self._next]
                self._next += 1
                self.queues[job.queue].append(job)
                self.waiting += 1
                self._dispatch(nxt)
            else:
                break
        self.now = t

    # --- what a source reads -----------------------------------------------------------------

    def oldest_age(self, t: float) -> float:
        """Age (s) of the oldest due job waiting at ``t`` (0 when none waits)."""
        if not self.waiting:
            return 0.0
        return t - min(q[0].due for q in self.queues if q)

    def signal(self, t: float) -> tuple[float, int, int]:
        """``(oldest age in ms, depth, busy)`` at ``t``, after playing everything up to ``t``."""
        self.advance(t)
        age = self.oldest_age(t)
        if age > 0.0:
            minute = int(math.nextafter(t, -math.inf) // self.minute_s)
            if age > self.minute_age.get(minute, 0.0):
                self.minute_age[minute] = age
        return age * 1000.0, self.waiting, self.running

    def settled(self) -> bool:
        """Nothing waits, boots or is being stopped: until the next arrival, only running jobs
        finishing can change anything (the signal stays 0, the depth 0)."""
        return not self.waiting and not self._pending

    def next_arrival(self) -> float:
        return self.jobs[self._next].due if self._next < len(self.jobs) else math.inf

    def close(self, t: float) -> None:
        """End of the run at ``t``: the paid time of instances still up, the queue time of jobs
        still waiting or running (unknown is not zero: they count with what they waited)."""
        self.advance(t)
        for inst in self.alive + self._stopping():
            self.paid_s += t - inst.created
            self.waits.extend(job.waited for job in inst.jobs)
        for q in self.queues:
            for job in q:
                self.waits.append(job.waited + t - job.enq)

    def _stopping(self) -> list[Instance]:
        return [
            what
            for _, _, kind, what, _ in self.events
            if kind == _KILL and isinstance(what, Instance) and what.ended is None
        ]
