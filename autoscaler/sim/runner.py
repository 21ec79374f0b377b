"""Replaying a prepared trace through the app model with one policy, and the figures it yields.

``Setup`` holds the model's parameters; ``prepare`` turns a trace into per-step rates scaled to
``peak_instances``; ``replay`` runs one policy with the fast or the exact model and returns a
``Result`` (the SPEC figures plus per-minute series for the report).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from autoscaler.policy import PolicyConfig
from autoscaler.sim import fast
from autoscaler.sim.baselines import (
    EnginePolicy,
    HpaPolicy,
    OraclePolicy,
    Policy,
    StaticPolicy,
    StepPolicy,
    boot_steps,
)
from autoscaler.sim.fast import FastModel, Queueing
from autoscaler.sim.model import RequestLog, ServiceTimes, WebPool, aggregate
from autoscaler.sim.traces import Steps, Trace, scaled, to_steps


@dataclass(frozen=True)
class Setup:
    """The simulated app and the run's parameters."""

    service_ms: float = 100.0
    service_cv: float = 1.0
    concurrency: int = 4
    boot_s: float = 45.0
    slo_ms: float = 200.0
    interval_s: float = 5.0
    window_s: float = 30.0
    aggregate: str = "p95"
    min_samples: int = 5
    smooth_s: float = 60.0
    peak_instances: float | None = None
    seed: int = 1
    exact: bool = False
    # at most this many requests wait for one instance (in its queue and its share of the
    # router's); one routed to an instance that already has as many is refused at once and
    # counts as over the SLO in its minute (a router's backlog limit, as Heroku's H11); ``None``:
    # queues without bound
    router_queue: int | None = None


@dataclass
class Prepared:
    """A trace ready to replay: per-step rates after smoothing and scaling."""

    steps: Steps
    scale: float
    start: float  # epoch seconds of the first step
    queueing: Queueing
    setup: Setup
    peak_need: int = 1  # the fewest instances whose stationary p95 wait at the peak is in the SLO
    _needs: list[int] | None = field(default=None, repr=False)
    _table: _NeedTable | None = field(default=None, repr=False)

    @property
    def needs(self) -> list[int]:
        """Per step, what the oracle runs (``_NeedTable``); computed when first asked for."""
        if self._needs is None:
            table = self._need_table()
            service = self.steps.service_s
            if service is None:
                self._needs = table.needs(self.steps.rates, self.setup.service_ms / 1000.0)
            else:
                self._needs = [
                    table.need(r, s) for r, s in zip(self.steps.rates, service, strict=True)
                ]
        return self._needs

    def need_at(self, k: int) -> int:
        """What the oracle runs at step ``k`` (without computing every step's)."""
        if self._needs is not None:
            return self._needs[k]
        service = self.steps.service_s
        s = self.setup.service_ms / 1000.0 if service is None else service[k]
        return self._need_table().need(self.steps.rates[k], s)

    def _need_table(self) -> _NeedTable:
        if self._table is None:
            self._table = _NeedTable(self.queueing, self.setup)
        return self._table


def prepare(trace: Trace, setup: Setup) -> Prepared:
    """Smooth, scale (to ``peak_instances`` if set) and size the oracle's needs."""
    queueing = Queueing(setup.concurrency, setup.service_cv)
    raw = to_steps(trace, setup.interval_s, setup.smooth_s, setup.service_ms / 1000.0)
    slo_s = setup.slo_ms / 1000.0
    # instances needed per unit of rate, per step (service times may vary per bin)
    per_rate: dict[float, float] = {}

    def need_per_rate(s: float) -> float:
        if s not in per_rate:
            rho = max(queueing.max_rho(slo_s / s), 1e-6)
            per_rate[s] = s / (setup.concurrency * rho)
        return per_rate[s]

    if raw.service_s is None:
        ratios: list[float] | float = need_per_rate(setup.service_ms / 1000.0)
    else:
        ratios = [need_per_rate(s) for s in raw.service_s]
    scale = 1.0
    if isinstance(ratios, float):
        peak = max(raw.rates, default=0.0) * ratios
    else:
        peak = max((r * x for r, x in zip(raw.rates, ratios, strict=True)), default=0.0)
    if setup.peak_instances is not None:
        if peak <= 0:
            raise ValueError("the trace has no requests, so it cannot be scaled to a peak")
        scale = setup.peak_instances / peak
    steps = scaled(raw, scale) if scale != 1.0 else raw
    peak_need = max(1, math.ceil(peak * scale - 1e-9))
    return Prepared(steps, scale, trace.start, queueing, setup, peak_need)


# a minute passes when at most 5% of its requests wait longer than the SLO; the share a minute
# really has varies around the expected one (the fast model's ``attainment``): the oracle sizes
# each step so that its minute passes with 99% probability
_PASS_Z = 2.33


class _NeedTable:
    """The oracle's need per step: the fewest instances whose minute meets the SLO with 99%
    probability, i.e. whose expected share of requests over the SLO is at most ``0.05 - 2.33
    sd``, ``sd`` the spread of that share in a minute of requests at the step's rate (as the
    fast model judges minutes). The share is taken in tenths of a percent (rounded down, at
    least 0.5%); for each, the rate from which it applies and the instances per unit of rate."""

    def __init__(self, queueing: Queueing, setup: Setup) -> None:
        self.queueing = queueing
        self.slo_s = setup.slo_ms / 1000.0
        self.c = setup.concurrency
        spread = 0.0475 * fast.NOISE_K / 60.0
        # share >= m / 1000 from this rate on, for m = 6 .. 49 (below: 5)
        self.thresholds = [spread * (_PASS_Z / (0.05 - m / 1000.0)) ** 2 for m in range(6, 50)]
        self._per_rate: dict[float, list[float]] = {}

    def _factors(self, s: float) -> list[float]:
        """Instances per unit of rate, by share bucket, for service time ``s``."""
        factors = self._per_rate.get(s)
        if factors is None:
            factors = [
                s / (self.c * max(self.queueing.max_rho_share(self.slo_s / s, m / 1000.0), 1e-6))
                for m in range(5, 50)
            ]
            self._per_rate[s] = factors
        return factors

    def need(self, rate: float, s: float) -> int:
        if rate <= 0.0:
            return 0
        return math.ceil(rate * self._factors(s)[bisect_right(self.thresholds, rate)] - 1e-9)

    def needs(self, rates: list[float], s: float) -> list[int]:
        factors, thresholds, ceil = self._factors(s), self.thresholds, math.ceil
        return [
            ceil(r * factors[bisect_right(thresholds, r)] - 1e-9) if r > 0.0 else 0 for r in rates
        ]


@dataclass
class Result:
    policy: str
    model: str
    scale: float
    instance_hours: float
    slo_attainment: float
    p95_queue_ms: float
    p99_queue_ms: float
    max_queue_ms: float
    scale_events: int
    minutes: int
    mean_instances: float
    max_instances: int
    # per minute, for the report
    load: list[float] = field(default_factory=list, repr=False)  # requests/s
    instances: list[int] = field(default_factory=list, repr=False)  # max in the minute
    p95_series: list[float] = field(default_factory=list, repr=False)  # ms
    # the fast model's deepest queue at one instance (requests; ``None`` for the exact model):
    # a diagnostic, not among the figures
    deepest_queue: float | None = field(default=None, repr=False)
    # requests refused by the router's limit (``Setup.router_queue``; ``None`` without one)
    refused: float | None = None

    def figures(self) -> dict[str, float | int | str]:
        out: dict[str, float | int | str] = {
            "policy": self.policy,
            "instance_hours": round(self.instance_hours, 2),
            "slo_attainment": round(self.slo_attainment, 5),
            "p95_queue_ms": round(self.p95_queue_ms, 1),
            "p99_queue_ms": round(self.p99_queue_ms, 1),
            "max_queue_ms": round(self.max_queue_ms, 1),
            "scale_events": self.scale_events,
            "minutes": self.minutes,
            "mean_instances": round(self.mean_instances, 2),
            "max_instances": self.max_instances,
            "model": self.model,
            "scale": self.scale,
        }
        if self.refused is not None:  # a router limit was set
            out["refused_requests"] = round(self.refused)
        return out


def slo_band(
    cfg: PolicyConfig,
    slo_ms: float,
    *,
    up_set: bool,
    down_set: bool,
    up_share: float = 1.0,
    down_share: float = 0.25,
    unit: str = "ms",
) -> tuple[PolicyConfig, str]:
    """The engine's settings with its band derived from the SLO where it was not set: the up
    threshold at ``up_share`` of the SLO and the down threshold at ``down_share`` of the up one
    (for web, the SLO and a quarter, as ``step`` has it: the defaults, 200 ms and 50 ms, are
    this band for a 200 ms SLO). Returns the settings and a line saying which band is used and
    where it comes from, in ``unit`` (``ms`` or ``s``)."""
    up = cfg.up_ms if up_set else slo_ms * up_share
    down = cfg.down_ms if down_set else up * down_share
    if down_set and not up_set and down >= up:
        up = down / down_share  # a down threshold set above the derived up one: keep the shape
    if up_set and down_set:
        origin = "as configured"
    elif up_set or down_set:
        origin = f"{'up' if up_set else 'down'} as configured, the other from --slo-ms {slo_ms:g}"
    else:
        origin = f"from --slo-ms {slo_ms:g}"
    per = 1000.0 if unit == "s" else 1.0
    line = f"band: up {up / per:g} {unit}, down {down / per:g} {unit} ({origin})"
    return cfg.replace(up_ms=up, down_ms=down), line


@dataclass(frozen=True)
class PolicySpec:
    """What it takes to build a policy in a worker process (picklable)."""

    name: str
    low: int
    high: int
    cfg: PolicyConfig | None = None  # the engine's settings (default and tune candidates)

    def build(self, prepared: Prepared, setup: Setup, start: int = 0) -> Policy:
        """The policy for a run that begins at step ``start`` of the prepared trace."""
        if self.cfg is not None:
            return EnginePolicy(
                self.cfg,
                min_samples=setup.min_samples,
                wall0=prepared.start,
                window_s=setup.window_s,
                name=self.name,
            )
        if self.name == "static":
            return StaticPolicy(min(self.high, max(self.low, prepared.peak_need)))
        if self.name == "oracle":
            ahead = boot_steps(setup.boot_s, prepared.steps.dt)
            return OraclePolicy(
                prepared.needs[start:], prepared.steps.dt, self.low, self.high, ahead=ahead
            )
        if self.name == "bound":
            return OraclePolicy(
                prepared.needs[start:], prepared.steps.dt, self.low, self.high, name="bound"
            )
        if self.name == "hpa":
            return HpaPolicy(self.low, self.high)
        if self.name == "step":
            return StepPolicy(self.low, self.high, up_ms=setup.slo_ms, down_ms=setup.slo_ms / 4)
        raise ValueError(f"unknown policy {self.name!r}")


def make_model(
    prepared: Prepared,
    setup: Setup,
    rates: list[float],
    service: float | list[float],
    *,
    quantity: int,
    boot_s: float,
    noise_k: float = fast.NOISE_K,
) -> FastModel | ExactModel:
    """The model ``setup`` asks for (``exact`` or fast) over ``rates`` (per step of the prepared
    trace), starting with ``quantity`` instances serving; the fast model's sampling noise at
    ``noise_k`` (0: none)."""
    dt = prepared.steps.dt
    if setup.exact:
        return ExactModel(rates, service, dt, setup=setup, boot_s=boot_s, quantity=quantity)
    return FastModel(
        rates,
        service,
        dt,
        queueing=prepared.queueing,
        boot_s=boot_s,
        slo_s=setup.slo_ms / 1000.0,
        quantity=quantity,
        window_s=setup.window_s,
        seed=setup.seed,
        noise_k=noise_k,
        router_queue=setup.router_queue,
    )


def start_need(prepared: Prepared, setup: Setup, start: int = 0, stop: int | None = None) -> int:
    """What a policy's formation starts with at step ``start`` (within ``stop``): the app ran
    before the replay began, so every policy starts with what the oracle starts with (the most
    any step until a first boot ends needs), and none gains or loses by where the trace starts."""
    stop = len(prepared.steps) if stop is None else min(stop, len(prepared.steps))
    end = min(start + boot_steps(setup.boot_s, prepared.steps.dt) + 1, stop)
    return max((prepared.need_at(k) for k in range(start, end)), default=1)


def replay(
    prepared: Prepared,
    setup: Setup,
    spec: PolicySpec,
    *,
    start: int = 0,
    stop: int | None = None,
    series: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Run one policy over steps ``start..stop`` of the prepared trace."""
    steps = prepared.steps
    stop = len(steps) if stop is None else min(stop, len(steps))
    rates = steps.rates[start:stop]
    service: float | list[float] = (
        setup.service_ms / 1000.0 if steps.service_s is None else steps.service_s[start:stop]
    )
    policy = spec.build(prepared, setup, start)
    boot = 0.0 if spec.name == "bound" else setup.boot_s
    if spec.name == "static":
        quantity = policy(0.0, 0, None, 0.0, 0.0)
    elif isinstance(policy, OraclePolicy):
        quantity = policy(0.0, 0, None, 0.0, 0.0)  # what the first steps need, ready at once
    else:
        quantity = min(spec.high, max(spec.low, start_need(prepared, setup, start, stop)))
    dt = steps.dt
    model = make_model(prepared, setup, rates, service, quantity=quantity, boot_s=boot)
    # (read with a C-level partial rather than a lambda: once a tick, half a million times)
    if isinstance(policy, HpaPolicy):  # the instances serving: what the platform reports
        policy.ready = partial(getattr, model, "ready")
    if isinstance(policy, EnginePolicy):
        # the instances serving (what the platform reports as ready, and whether any middleware
        # is alive to publish heartbeats in a window without requests) and the middleware's busy
        # time, as the daemon reads them
        policy.app = model
    n = len(rates)
    per_minute = model.minute_steps
    changes = [(0, quantity)]  # (step, quantity from that step on)
    # (the bound methods: calling an instance looks its ``__call__`` up on every call)
    step, scale, wanted = model.step, model.scale, policy.__call__
    chunk = max(1, n // 100)
    for first in range(0, n, chunk):
        for k in range(first, min(first + chunk, n)):
            signal, samples, util = step(k, quantity)
            desired = wanted((k + 1) * dt, quantity, signal, samples, util)
            if desired != quantity:
                scale(desired, (k + 1) * dt)
                quantity = desired
                changes.append((k + 1, quantity))
        if progress is not None:
            progress(min(first + chunk, n), n)
    events = len(changes) - 1
    peak = max(q for _, q in changes)
    ends = [k for k, _ in changes[1:]] + [n]
    instance_steps = sum((end - k) * q for (k, q), end in zip(changes, ends, strict=True))
    attainment, minutes = model.attainment()
    p95, p99, worst = model.quantiles()
    result = Result(
        policy=spec.name,
        model="exact" if setup.exact else "fast",
        scale=prepared.scale,
        instance_hours=instance_steps * dt / 3600.0,
        slo_attainment=attainment,
        p95_queue_ms=p95,
        p99_queue_ms=p99,
        max_queue_ms=worst,
        scale_events=events,
        minutes=minutes,
        mean_instances=instance_steps / n if n else 0.0,
        max_instances=peak,
        deepest_queue=getattr(model, "deepest", None),
        refused=None if setup.router_queue is None else float(model.refused),
    )
    if series:
        result.load = [sum(rates[i : i + per_minute]) / per_minute for i in range(0, n, per_minute)]
        result.instances = _per_minute_max(changes, n, per_minute)
        result.p95_series = model.minute_p95_series()
    return result


def _per_minute_max(changes: list[tuple[int, int]], n: int, per_minute: int) -> list[int]:
    """The highest quantity in each minute, from the (step, quantity) changes."""
    out = [0] * math.ceil(n / per_minute)
    for (k, quantity), (nxt, _) in zip(changes, [*changes[1:], (n, 0)], strict=True):
        if nxt <= k:
            continue
        for minute in range(k // per_minute, (nxt - 1) // per_minute + 1):
            out[minute] = max(out[minute], quantity)
    return out


class ExactModel:
    """The request-level model (``autoscaler.sim.model``) behind the same step interface as
    ``FastModel``: Poisson arrivals at each step's rate (seeded), one ``WebPool``."""

    def __init__(
        self,
        rates: list[float],
        service_s: float | list[float],
        dt: float,
        *,
        setup: Setup,
        boot_s: float,
        quantity: int,
    ) -> None:
        self.rates = rates
        self.service_s = service_s
        self.dt = dt
        self.setup = setup
        self.rng = random.Random(setup.seed)
        mean = service_s if isinstance(service_s, float) else setup.service_ms / 1000.0
        self.times = ServiceTimes(mean, setup.service_cv, self.rng)
        self.pool = WebPool(
            quantity,
            concurrency=setup.concurrency,
            service=self.times,
            boot_s=boot_s,
            rng=self.rng,
            router_queue=setup.router_queue,
        )
        self.log = RequestLog(keep_s=max(120.0, 2 * setup.window_s), bucket_s=dt)
        self.in_use = 0.0  # mean requests in service over the window (set by ``step``)
        self.minute_steps = max(1, round(60.0 / dt))
        self.slo_s = setup.slo_ms / 1000.0
        self.minute_ok: list[bool] = []
        self.minute_p95: list[float] = []
        self._minute: list[float] = []
        self.hist: dict[int, int] = {}
        self.count = 0
        self.worst = 0.0
        self.now = 0.0
        self.refused = 0  # requests refused by the router's limit (``Setup.router_queue``)

    @property
    def ready(self) -> int:
        """The instances serving when the policy reads the platform (the last step's end)."""
        return self.pool.serving(self.now)

    def scale(self, quantity: int, t: float) -> None:
        self.pool.scale(quantity, t)

    def step(self, k: int, quantity: int) -> tuple[float | None, float, float]:
        dt = self.dt
        t0, t1 = k * dt, (k + 1) * dt
        self.now = t1
        rate = self.rates[k]
        if not isinstance(self.service_s, float):
            self.times = ServiceTimes(self.service_s[k], self.setup.service_cv, self.rng)
            self.pool.service = self.times
        rng = self.rng
        if rate > 0:
            # a Poisson process at this step's rate (memoryless: drawn afresh at each step)
            t = t0 + rng.expovariate(rate)
            pool, log, minute, hist = self.pool, self.log, self._minute, self.hist
            while t < t1:
                routed = pool.arrive(t)
                if routed is None:  # refused: never starts, over the SLO in its minute
                    minute.append(math.inf)
                    self.refused += 1
                else:
                    start, finish = routed
                    log.add(t, start, finish)
                    wait = start - t
                    minute.append(wait)
                    b = int(100.0 * math.log1p(1000.0 * wait))
                    hist[b] = hist.get(b, 0) + 1
                    self.worst = max(self.worst, wait)
                t += rng.expovariate(rate)
        if (k + 1) % self.minute_steps == 0 or k + 1 == len(self.rates):
            self._close_minute()
        times = self.log.queue_times(t1, self.setup.window_s)
        self.in_use = self.log.in_use(t1, self.setup.window_s)
        n_serving = self.pool.serving(t1)
        slots = n_serving * self.setup.concurrency
        s = self.times.mean_s
        util = min(1.0, rate * s / slots) if slots else 0.0
        if slots and self.log.waiting(t1) > slots:
            util = 1.0  # a backlog: every slot is busy
        if not times:
            return None, 0.0, util
        return 1000.0 * aggregate(times, self.setup.aggregate), float(len(times)), util

    def _close_minute(self) -> None:
        waits = self._minute
        if waits:
            waits.sort()
            n = len(waits)
            p95 = waits[math.ceil(0.95 * n) - 1]
            self.minute_ok.append(p95 <= self.slo_s)
            self.minute_p95.append(1000.0 * p95)
            self.count += n
        else:
            self.minute_ok.append(True)
            self.minute_p95.append(0.0)
        self._minute = []

    def attainment(self) -> tuple[float, int]:
        minutes = len(self.minute_ok)
        return (sum(self.minute_ok) / minutes if minutes else 1.0), minutes

    def quantiles(self) -> tuple[float, float, float]:
        return self._quantile(0.95), self._quantile(0.99), 1000.0 * self.worst

    def _quantile(self, level: float) -> float:
        """Nearest-rank quantile in ms (to within 1%) from the log-bucket histogram."""
        rank = math.ceil(level * sum(self.hist.values()))
        acc = 0
        for b in sorted(self.hist):
            acc += self.hist[b]
            if acc >= rank:
                return math.expm1((b + 0.5) / 100.0) if b > 0 else 0.0
        return 0.0

    def minute_p95_series(self) -> list[float]:
        return self.minute_p95
