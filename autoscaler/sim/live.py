"""The built-in simulated app that ``autoscaler run`` drives when no platform is configured.

One in-process app per configuration, shared by the ``sim`` platform (which reads and sets its
formation) and the ``sim`` source (which reads its queue times). It advances lazily: each call
first plays the app forward to the current simulated time of the shared accelerated clock
(``autoscaler.clock.accelerated(AUTOSCALER_SIM_SPEED)``), so the policy's cooldowns and the
app's boot delays run on the same simulated time.

The load: a web process receiving requests and a worker process receiving jobs, both following
one arrival curve (``ArrivalCurve``): a slow daily swing, a burst three minutes in (so that a
newcomer sees a scale-up, then the scale-downs once it is over), then random bursts drawn from
``AUTOSCALER_SIM_SEED``.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from dataclasses import dataclass

from autoscaler.clock import Clock, accelerated
from autoscaler.configkit import DaemonConfig, ProcessConfig
from autoscaler.model import Formation, Metric, Reading
from autoscaler.sim.model import RequestLog, ServiceTimes, WebPool, WorkerPool, aggregate

DAY_S = 86_400.0


@dataclass(frozen=True)
class AppShape:
    """The simulated app's constants (per process type)."""

    web_rate: float = 15.0  # requests per second at the base of the curve
    web_service_s: float = 0.1
    web_concurrency: int = 4  # 40 requests/s per instance at most
    job_rate: float = 1.5  # jobs per second at the base of the curve
    job_service_s: float = 1.0
    job_concurrency: int = 4
    boot_s: float = 20.0
    service_cv: float = 1.0
    first_burst: tuple[float, float, float] = (180.0, 900.0, 6.0)  # start, end, factor
    burst_gap_s: float = 2400.0  # mean gap between later bursts
    start_quantity: int = 1


class ArrivalCurve:
    """A load multiplier over simulated seconds since start: a daily swing (x0.7 to x1.3),
    a first burst at a fixed time, then seeded random bursts (5 to 15 minutes, x2.5 to x5)."""

    def __init__(self, seed: int, shape: AppShape = AppShape()) -> None:
        self.shape = shape
        rng = random.Random(seed)
        start, end, factor = shape.first_burst
        self.bursts: list[tuple[float, float, float]] = [(start, end, factor)]
        t = 3600.0
        while t < 30 * DAY_S:
            t += rng.expovariate(1.0 / shape.burst_gap_s)
            length = rng.uniform(300.0, 900.0)
            self.bursts.append((t, t + length, rng.uniform(2.5, 5.0)))
            t += length
        self._starts = [b[0] for b in self.bursts]

    def factor(self, t: float) -> float:
        daily = 1.0 + 0.3 * math.sin(2 * math.pi * t / DAY_S)
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return daily
        start, end, factor = self.bursts[i]
        if t >= end:
            return daily
        ramp = min(1.0, (t - start) / 30.0, (end - t) / 30.0)  # 30 s edges
        return daily * (1.0 + (factor - 1.0) * ramp)


class _Process:
    """What a simulated web and worker process share: its settings, its pool, its scaling."""

    def __init__(self, p: ProcessConfig, base_rate: float, pool: WebPool | WorkerPool) -> None:
        self.settings = p
        self.base_rate = base_rate
        self.pool = pool

    @property
    def quantity(self) -> int:
        return self.pool.quantity

    def scale(self, quantity: int, t: float) -> None:
        self.pool.scale(quantity, t)


class _Web(_Process):
    def __init__(self, p: ProcessConfig, shape: AppShape, rng: random.Random) -> None:
        service = ServiceTimes(shape.web_service_s, shape.service_cv, rng)
        self.web = WebPool(
            max(p.min, shape.start_quantity),
            concurrency=shape.web_concurrency,
            service=service,
            boot_s=shape.boot_s,
            rng=rng,
        )
        super().__init__(p, shape.web_rate, self.web)
        self.log = RequestLog(keep_s=max(600.0, 2 * p.window))

    def arrive(self, t: float) -> None:
        routed = self.web.arrive(t)  # (no router limit here: every request is routed)
        assert routed is not None
        self.log.add(t, *routed)

    def reading(self, t: float) -> Reading:
        p = self.settings
        times = self.log.queue_times(t, p.window)
        assert p.aggregate is not None
        value = aggregate(times, p.aggregate) * 1000.0 if times else None
        return Reading(
            Metric.REQUEST_QUEUE_TIME,
            value,
            samples=len(times),
            age_s=0.0,
            depth=self.log.waiting(t),
            busy=self.log.busy(t),
            rate_per_s=self.log.arrivals(t, p.window) / p.window,
            in_use=self.log.in_use(t, p.window),
        )


class _Worker(_Process):
    def __init__(self, p: ProcessConfig, shape: AppShape, rng: random.Random) -> None:
        service = ServiceTimes(shape.job_service_s, shape.service_cv, rng)
        start = max(p.min, shape.start_quantity)
        self.jobs = WorkerPool(
            start, concurrency=shape.job_concurrency, service=service, boot_s=shape.boot_s
        )
        super().__init__(p, shape.job_rate, self.jobs)

    def arrive(self, t: float) -> None:
        self.jobs.enqueue(t)

    def reading(self, t: float) -> Reading:
        depth = self.jobs.depth(t)
        return Reading(
            Metric.JOB_LATENCY,
            self.jobs.latency(t) * 1000.0,
            samples=depth,
            age_s=0.0,
            depth=depth,
            busy=self.jobs.busy(t),
        )


class LiveApp:
    """The simulated app, played forward lazily to ``clock``'s time.

    Simulated time is ``clock.now().mono`` minus its value when the app was made; every
    public method first advances the app to now, under one lock (the loop polls sources in
    threads).
    """

    def __init__(
        self,
        settings: DaemonConfig,
        clock: Clock,
        *,
        seed: int | None = None,
        shape: AppShape = AppShape(),
    ) -> None:
        self.clock = clock
        self._t0 = clock.now().mono
        if seed is None:
            seed = settings.glob.sim_seed if settings.glob.sim_seed is not None else 1
        self.seed = seed
        self.curve = ArrivalCurve(seed, shape)
        rng = random.Random(seed + 1)
        self._rng = rng
        self.processes: dict[str, _Web | _Worker] = {}
        for name, p in settings.processes.items():
            if p.metric is Metric.JOB_LATENCY:
                self.processes[name] = _Worker(p, shape, rng)
            else:
                self.processes[name] = _Web(p, shape, rng)
        self.updated_at: dict[str, float] = {}
        self._next = {name: self._gap(name, 0.0) for name in self.processes}
        self._t = 0.0
        self._lock = threading.Lock()

    def _gap(self, name: str, t: float) -> float:
        rate = self.processes[name].base_rate * self.curve.factor(t)
        return t + self._rng.expovariate(rate)

    def _advance(self) -> float:
        t = max(self._t, self.clock.now().mono - self._t0)
        for name, proc in self.processes.items():
            nxt = self._next[name]
            while nxt <= t:
                proc.arrive(nxt)
                nxt = self._gap(name, nxt)
            self._next[name] = nxt
        self._t = t
        return t

    def now(self) -> float:
        """Simulated seconds since the app started."""
        with self._lock:
            return self._advance()

    def _process(self, name: str) -> _Web | _Worker:
        if name not in self.processes:
            known = ", ".join(sorted(self.processes))
            raise KeyError(f"the simulated app has no process {name!r} (it has {known})")
        return self.processes[name]

    def quantity(self, name: str) -> int:
        with self._lock:
            self._advance()
            return self._process(name).quantity

    def scale(self, name: str, quantity: int) -> None:
        with self._lock:
            t = self._advance()
            self._process(name).scale(quantity, t)
            self.updated_at[name] = self.clock.now().wall  # the loop's wall clock

    def reading(self, name: str) -> Reading:
        with self._lock:
            t = self._advance()
            return self._process(name).reading(t)

    def formation(self, name: str) -> Formation:
        with self._lock:
            t = self._advance()
            proc = self._process(name)
            serving = getattr(proc.pool, "serving", None)
            ready = serving(t) if serving is not None else None
            return Formation(proc.quantity, self.updated_at.get(name), ready=ready)


_apps: dict[tuple[object, ...], LiveApp] = {}
_apps_lock = threading.Lock()


def shared_app(settings: DaemonConfig) -> LiveApp:
    """The one simulated app for this configuration (the ``sim`` platform and sources share it),
    on the process-wide accelerated clock."""
    g = settings.glob
    key = (
        g.sim_speed,
        g.sim_seed,
        tuple(
            (name, p.metric, p.min, p.window, p.aggregate) for name, p in settings.processes.items()
        ),
    )
    with _apps_lock:
        if key not in _apps:
            _apps[key] = LiveApp(settings, accelerated(g.sim_speed))
        return _apps[key]


def forget_apps() -> None:
    """Drop every shared app (tests start from a fresh one)."""
    with _apps_lock:
        _apps.clear()
