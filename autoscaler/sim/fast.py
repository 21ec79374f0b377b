"""The fast app model for sweeps: the app of ``autoscaler.sim.model`` approximated per step.

Each instance receives a random share of the requests (random routing), so with ``n`` serving
instances each one is a queue with ``concurrency`` slots fed at ``rate / n``. Per step:

- the instances' offered load ``rho = rate * service / (n * concurrency)``;
- a fluid backlog that grows while the offered load is above capacity and drains after
  (its wait ``d`` is the backlog divided by the capacity), kept per cohort of instances (those
  that began holding one in the same step): requests are routed on arrival, so each instance
  drains its own queue, and the first of an overload, which received arrivals longest, hold
  the most; instances that join start with an empty queue, the newest leave first;
- on top of it, the stationary queueing delay of an M/G/c queue (Erlang C, with the
  Allen-Cunneen correction for the service-time spread): a request waits with probability
  ``C(rho)``, and then for an exponentially distributed time with rate
  ``theta = c * (1 - rho) / service * 2 / (1 + cv^2)``.

So a request arriving in that step waits more than ``x`` with probability
``min(1, C * exp(-theta * (x - d)))`` (1 below ``d``). Arrivals are the trace's rate; the
randomness of Poisson arrivals is inside the queueing formulas. What a source reads of a finite
window carries sampling noise (seeded): the rank its p95 lands on, its request count and its
requests in service, correlated as the exact model's.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import deque

RHO_BINS = 4000
RHO_CAP = 0.97  # the stationary part never uses a load above this; the backlog takes over
_LN20 = math.log(20.0)
NOISE_K = 7.0  # requests per independent sample in the signal's sampling noise (calibrated)
_sqrt, _log, _exp = math.sqrt, math.log, math.exp  # the hot loop's
_SQRT12 = math.sqrt(12.0)  # a uniform's sd is 1 / sqrt(12)
# the window p95's sampling noise, in sds: its correlation with the window's count and with its
# requests' service times (the exact model's, at a 60% load: corr(count, p95) 0.28 and
# corr(in_use, p95) 0.49), the rest its own
_BY_COUNT, _BY_SERVICE = 0.275, 0.415
_BY_RANK = math.sqrt(1.0 - _BY_COUNT**2 - _BY_SERVICE**2)
#: what ``FastModel._queued`` returns and ``FastModel._mixed`` reads (the figures of a step with
#: a queue, in the order ``_queued``'s docstring gives them)
Queued = tuple[
    list[tuple[float, float]], float, float, float, float, float, list[tuple[float, float, float]]
]


def erlang_c(c: int, rho: float) -> float:
    """Probability that an arrival waits in an M/M/c queue at per-slot load ``rho`` (< 1)."""
    if rho <= 0.0:
        return 0.0
    a = c * rho
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - rho * (1.0 - b))


class Queueing:
    """The per-instance queueing figures tabulated over the load ``rho`` (in ``RHO_BINS``)."""

    def __init__(self, concurrency: int, cv: float) -> None:
        self.concurrency = concurrency
        self.cv = cv
        self.k2 = 2.0 / (1.0 + cv * cv)
        self.wait_prob: list[float] = []  # C(rho)
        self.theta: list[float] = []  # tail rate, per service time
        self.p95: list[float] = []  # stationary p95 wait, in service times
        for i in range(RHO_BINS):
            rho = min(i / RHO_BINS, RHO_CAP)
            c = erlang_c(concurrency, rho)
            theta = concurrency * (1.0 - rho) * self.k2
            self.wait_prob.append(c)
            self.theta.append(theta)
            self.p95.append(math.log(c * 20.0) / theta if c > 0.05 else 0.0)

    def max_rho(self, slo_service_times: float) -> float:
        """The highest load at which the stationary p95 wait is within the SLO."""
        best = 0.0
        for i in range(RHO_BINS):
            if i / RHO_BINS > RHO_CAP:
                break
            if self.p95[i] <= slo_service_times:
                best = i / RHO_BINS
            else:
                break
        return best

    def max_rho_share(self, slo_service_times: float, share: float) -> float:
        """The highest load at which at most ``share`` of requests wait longer than the SLO
        (``slo_service_times`` service times)."""
        lo, hi = 0, min(RHO_BINS - 1, int(RHO_CAP * RHO_BINS))
        k2, x = self.k2, slo_service_times
        c = self.concurrency

        def over(i: int) -> float:
            return self.wait_prob[i] * math.exp(-c * (1.0 - i / RHO_BINS) * k2 * x)

        if over(hi) <= share:
            return hi / RHO_BINS
        while hi - lo > 1:  # over() grows with the load
            mid = (lo + hi) // 2
            if over(mid) <= share:
                lo = mid
            else:
                hi = mid
        return lo / RHO_BINS

    def need(self, rate: float, service_s: float, slo_s: float) -> int:
        """The fewest instances that keep the stationary p95 wait within the SLO at ``rate``."""
        rho = self.max_rho(slo_s / service_s)
        if rate <= 0:
            return 0
        return math.ceil(rate * service_s / (self.concurrency * max(rho, 1e-6)) - 1e-9)


class FastModel:
    """Plays a trace's per-step rates through the approximated app.

    ``step(k, quantity)`` plays step ``k`` (time ``k*dt`` to ``(k+1)*dt``) and returns what a
    source would report at its end: the window's p95 queue time in ms (``None`` when no request
    arrived in the window), the number of requests in the window, and the serving instances'
    mean utilization (for the ``hpa`` baseline). It also sets ``in_use``: the mean number of
    requests being served at once over the window (the requests served in each step times the
    service time, per second), what the middleware's busy time reports.
    """

    def __init__(
        self,
        rates: list[float],
        service_s: float | list[float],
        dt: float,
        *,
        queueing: Queueing,
        boot_s: float,
        slo_s: float,
        quantity: int,
        window_s: float,
        minute_s: float = 60.0,
        noise_k: float = NOISE_K,
        seed: int = 1,
        router_queue: int | None = None,
    ) -> None:
        if router_queue is not None and router_queue < 0:
            raise ValueError("router_queue must be >= 0")
        self.rates = rates
        # at most this many requests wait per instance; the rest of a step's arrivals at an
        # instance already holding as many are refused, over the SLO (``Setup.router_queue``)
        self.router_queue = router_queue
        self._cap = math.inf if router_queue is None else float(router_queue)
        self._refused = 0.0  # requests refused in the current step
        self.refused = 0.0  # over the run
        # per-step service times are kept to two significant digits (one table each)
        self.service_s = (
            service_s if isinstance(service_s, float) else [float(f"{v:.2g}") for v in service_s]
        )
        self.dt = dt
        self.q = queueing
        self.boot_s = boot_s
        self.slo_s = slo_s
        self.serving = quantity
        self.booting: deque[float] = deque()  # ready times, oldest first
        self.end = 0.0  # the end of the last step (s)
        self.backlog = 0.0  # requests, in every queue
        # the instances holding a backlog, per cohort (those that began holding one in the same
        # step, oldest first): ``[instances, backlog per instance, wait of the request starting
        # at the end of the last step (s)]``; the instances in none hold no queue and are the
        # newest (an older one has held at least as much as a newer since it began serving)
        self._cohorts: list[list[float]] = []
        # the most requests one instance held queued at the end of a step (a diagnostic: the
        # model keeps every request in the queue of the instance it was routed to, without
        # bound; ``benchmarks/bench_backlog.py``)
        self.deepest = 0.0
        m = max(1, math.ceil(window_s / dt - 1e-9))
        self._win_w: deque[float] = deque([0.0] * m, maxlen=m)
        self._win_p: deque[float] = deque([0.0] * m, maxlen=m)
        self._win_b: deque[float] = deque([0.0] * m, maxlen=m)  # busy slots per step
        # per step, how its requests' waits spread: the load bin (no queue: the stationary
        # tail) or the components of a step with a queue, ``(requests, knee, theta)``
        self._win_s: deque[int | list[tuple[float, float, float]]] = deque([0] * m, maxlen=m)
        self._last_q = -m  # the last step with a queue (or at the cap): the window holds it
        # a queue's history: cumulative arrivals per instance at each step's end since it began
        # (first in, first out: who starts arrived when these reach the instance's backlog)
        self._cum: list[float] = [0.0]
        self._cum_k = 0  # the step the queue began in
        self._sum_b = 0.0
        self._m = m
        self.in_use = 0.0
        self.minute_steps = max(1, round(minute_s / dt))
        nmin = math.ceil(len(rates) / self.minute_steps)
        self.minute_bad = [0.0] * nmin  # requests over the SLO, per minute
        self.minute_total = [0.0] * nmin
        self.minute_p95 = [0.0] * nmin  # the worst step's p95 (ms), for charts
        self.hist: dict[tuple[int, int, float], float] = {}  # (rho bin, delay bin, s) -> reqs
        self._sum_w = self._sum_p = 0.0  # the window's requests and p95-weighted sum
        self._service = service_s if isinstance(service_s, float) else 0.0
        self._slots = queueing.concurrency
        self._by_service: dict[float, tuple[list[float], list[float], list[float]]] = {}
        self.noise_k = noise_k
        self._noise = 0.0
        # the window's count and the service times of its requests against their expected
        # ones (in sds)
        self._count_noise = self._serve_noise = 0.0
        self._count = 0.0  # the window's count as the source reads it (set by ``_tail``)
        self._cv = queueing.cv
        self._phi = max(0.0, 1.0 - dt / window_s)
        self._kick = math.sqrt(1.0 - self._phi * self._phi)
        self._uniform = random.Random(seed).random
        self._rank_var = 0.0475 * noise_k  # variance of the sampled rank, times requests
        self._wait_prob = queueing.wait_prob
        self._hist0 = [0.0] * RHO_BINS  # requests per load bin, no backlog, fixed service
        if self._service:
            self._fixed = self._tables(self._service)

    def scale(self, quantity: int, t: float) -> None:
        current = self.serving + len(self.booting)
        if quantity > current:
            self.booting.extend([t + self.boot_s] * (quantity - current))
        else:
            drop = current - quantity
            while drop and self.booting:
                self.booting.pop()
                drop -= 1
            if drop and self._cohorts:
                self._leave(self.serving - drop)
            self.serving -= drop

    def _leave(self, serving: int) -> None:
        """The newest instances leave until ``serving`` remain: first those without a queue,
        then the newest cohorts'; one that leaves finishes the queue it was given."""
        cohorts = self._cohorts
        excess = sum(c[0] for c in cohorts) - serving
        while excess > 0 and cohorts:
            last = cohorts[-1]
            if last[0] <= excess:
                excess -= last[0]
                cohorts.pop()
            else:
                last[0] -= excess
                excess = 0
        self.backlog = sum(c[0] * c[1] for c in cohorts)

    def _tables(self, s: float) -> tuple[list[float], list[float], list[float]]:
        """Per load bin, for service time ``s``: tail rate (1/s), stationary p95 (ms), and the
        share of requests over the SLO without backlog."""
        cached = self._by_service.get(s)
        if cached is None:
            q, slo = self.q, self.slo_s
            theta = [th / s for th in q.theta]
            p95 = [p * s * 1000.0 for p in q.p95]
            over = [
                min(1.0, c * math.exp(-th * slo)) for c, th in zip(q.wait_prob, theta, strict=True)
            ]
            cached = self._by_service[s] = (theta, p95, over)
        return cached

    @property
    def ready(self) -> int:
        """The instances serving at the end of the last step, as the platform reports them when
        the policy reads it: those booted at the step's midpoint (the model's rule for whom a
        step serves) and those whose ready time falls in the step's second half."""
        n, end = self.serving, self.end
        for at in self.booting:
            if at > end:
                break
            n += 1
        return n

    def step(self, k: int, quantity: int) -> tuple[float | None, float, float]:
        dt = self.dt
        self.end = (k + 1) * dt
        booting = self.booting
        if booting and booting[0] <= (k + 0.5) * dt:
            self._boot((k + 0.5) * dt)
        n = self.serving
        rate = self.rates[k]
        s = self._service
        if s:
            theta_t, p95_t, over_t = self._fixed
        else:
            s = self.service_s[k]  # type: ignore[index]
            theta_t, p95_t, over_t = self._tables(s)
        arrivals = rate * dt
        backlog = self.backlog
        rho = rate / n / (self._slots / s) if n > 0 else 1.0
        i = int(rho * RHO_BINS)
        if i >= RHO_BINS:
            i = RHO_BINS - 1
        if rho < 1.0 and backlog <= 0.0:
            # the common case: no queue held from before, none building
            self.backlog = 0.0
            util = rho
            started = arrivals + backlog
            busy = started * s / dt  # served in the step, times service
            queued = None
        else:
            queued = self._queued(k, n, rate, s, arrivals, backlog, theta_t[i], i)
            util, busy, started = queued[3:6]
        win_b = self._win_b
        self._sum_b += busy - win_b[0]
        win_b.append(busy)
        self.in_use = self._sum_b / self._m if self._sum_b > 0.0 else 0.0
        if queued is not None or rho >= RHO_CAP:
            comps, p95, over = self._mixed(i, s, theta_t[i], rho, arrivals, queued)
            self._last_q = k
            # the waits of the requests that start in the step (the window's): the arrivals'
            # when no queue is held, else those behind the queue (first in, first out)
            if queued is None:
                self._win_s.append([(started * w, knee, theta_t[i]) for w, knee in comps])
            else:
                self._win_s.append(queued[6])
            win_p_add = 0.0
        else:
            comps = None
            p95 = p95_t[i]
            over = over_t[i]
            self._win_s.append(i)
            win_p_add = p95 * started
            if self._service:
                self._hist0[i] += arrivals
            elif arrivals > 0.0:
                key = (i, -1, s)
                self.hist[key] = self.hist.get(key, 0.0) + arrivals
        minute = k // self.minute_steps
        # the refused are over the SLO; the requests given a place in a queue take ``over``
        refused = self._refused
        self.minute_bad[minute] += (arrivals - refused) * over + refused
        self.refused += refused
        self._refused = 0.0
        self.minute_total[minute] += arrivals
        if p95 > self.minute_p95[minute]:  # noqa: PLR1730 (hot loop: cheaper than max())
            self.minute_p95[minute] = p95
        # the window holds the requests that started in it, as the middleware records them
        win_w, win_p = self._win_w, self._win_p
        self._sum_w += started - win_w[0]
        self._sum_p += win_p_add - win_p[0]
        win_w.append(started)
        win_p.append(win_p_add)
        samples = self._sum_w
        if samples <= 1e-9:
            return None, 0.0, util
        if k - self._last_q < self._m:
            # a queue in the window: the p95 of its requests, from their steps' tails
            if self.noise_k <= 0.0:
                return 1000.0 * self._window_quantile(k, 0.05), samples, util
            tail = self._tail(samples, rho, True)
            return 1000.0 * self._window_quantile(k, tail), self._count, util
        signal = self._sum_p / samples
        if self.noise_k > 0.0:
            # no queue in the window: the steps' p95s weighted by their requests (the loads
            # of a window without a queue are close, their tails alike)
            tail = self._tail(samples, rho, False)
            wait_prob = self._wait_prob[i]
            at = _log(wait_prob / tail) / theta_t[i] if wait_prob > tail else 0.0
            signal += 1000.0 * at - p95
            if signal < 0.0:  # noqa: PLR1730 (hot loop: cheaper than max())
                signal = 0.0
            return signal, self._count, util
        return signal, samples, util

    def _window_quantile(self, k: int, tail: float) -> float:
        """The wait (s) that a share ``tail`` of the window's requests exceed: the quantile of
        the mixture of its steps' waits (each step's requests times its tail)."""
        m = self._m
        q = self.q
        fixed = self._service
        terms: list[tuple[float, float, float]] = []
        total = 0.0
        for j, (started, d) in enumerate(zip(self._win_w, self._win_s, strict=True)):
            if started <= 0.0:
                continue
            total += started
            if isinstance(d, int):
                wait_prob = q.wait_prob[d]
                if wait_prob > 0.0:
                    s = fixed or self.service_s[k - m + 1 + j]  # type: ignore[index]
                    theta = q.theta[d] / s
                    terms.append((started, _log(wait_prob) / theta, theta))
            else:
                terms.extend(d)
        return _tail_quantile(terms, tail * total)

    def _tail(self, samples: float, rho: float, queue: bool) -> float:
        """The share of the window's requests above the rank a source with a finite,
        correlated sample lands on: it wanders around 5% (AR(1) across overlapping windows).
        Sets the window's count as the source reads it (``_count``) and, where no queue held
        every slot busy, ``in_use`` (never above the slots serving): their sampling noise."""
        r = self._uniform  # Irwin-Hall: a cheap, bounded stand-in for a standard normal
        z = (r() + r() + r() - 1.5) * 2.0
        phi, kick = self._phi, self._kick
        e = self._noise = phi * self._noise + kick * z
        # Poisson arrivals spread the window's count around the expected ``samples`` (sd its
        # square root) and its requests' service times add theirs to the time they were in
        # service (``in_use``); both drawn per step like the rank (AR(1), one uniform each:
        # summed over the window they are close to normal). A window with more arrivals or
        # longer services also waits longer: the rank's noise takes a share of each
        # (correlations measured on the exact model at a 60% load, service spread 1)
        c = self._count_noise = phi * self._count_noise + kick * (r() - 0.5) * _SQRT12
        v = self._serve_noise = phi * self._serve_noise + kick * (r() - 0.5) * _SQRT12
        root = _sqrt(samples)
        f = c / root
        self._count = samples * (1.0 + (f if f > -0.5 else -0.5))
        if not queue:
            f = (c + self._cv * v) / root
            in_use = self.in_use * (1.0 + (f if f > -0.5 else -0.5))
            slots = float(self.serving * self._slots)
            self.in_use = in_use if in_use < slots else slots
        e = _BY_COUNT * c + _BY_SERVICE * v + _BY_RANK * e
        spread = self._rank_var / samples
        if rho > 0.5:
            # near capacity, waits come in busy periods whose length grows as
            # 1 / (1 - load)^2: fewer independent samples in the same window
            spread *= 0.25 / (1.0 - (rho if rho < 0.9 else 0.9)) ** 2
        # the share is positive and skewed: lognormal around 5% with the spread's variance
        # (a normal one clipped near 0 read a p95 far out in the tail at high loads)
        w = _sqrt(_log(1.0 + spread * 400.0))  # 400 = 1 / 0.05^2
        tail = 0.05 * _exp(-e * w - 0.5 * w * w)
        if tail < 0.0005:
            return 0.0005
        if tail > 0.5:
            return 0.5
        return tail

    def _boot(self, t: float) -> None:
        """Instances whose ready time is at or before ``t`` start serving."""
        booting = self.booting
        while booting and booting[0] <= t:
            booting.popleft()
            self.serving += 1

    def _queued(  # noqa: PLR0917 (hot loop: positional)
        self,
        k: int,
        n: int,
        rate: float,
        s: float,
        arrivals: float,
        backlog: float,
        theta: float,
        i: int,
    ) -> Queued:
        """A step with a queue: a backlog held from before, or one building (or no instance
        serving). Sets the backlog at the end of the step, per cohort, and returns the arrivals'
        groups behind a backlog ``(share of arrivals, delay)``, the others' delay, their share,
        the utilization, the busy slots (served in the step, times service), the requests that
        started in the step and their waits as components ``(requests, knee, theta)``: a request
        starting behind a queue waits since it arrived (first in, first out), read from the
        queue's history."""
        dt = self.dt
        cohorts = self._cohorts
        if not cohorts:  # a queue begins
            self._cum = [0.0]
            self._cum_k = k
        starts: list[tuple[float, float, float]] = []
        groups: list[tuple[float, float]] = []
        d_rest = 0.0
        if n > 0:
            mu = self._slots / s  # one instance's capacity, requests/s
            a = rate / n  # what each instance receives (random routing)
            self._arrive(a * dt)
            held = 0.0
            if a / mu < 1.0:
                # each cohort drains its own backlog (requests are routed on arrival): the
                # instances without one serve new arrivals
                drain = (mu - a) * dt
                free = 0.0
                kept = []
                for c in cohorts:
                    count, b, w0 = c
                    held += count
                    left = b - drain
                    if left > 0.0:
                        w1 = self._head_wait(k, left, mu)
                        starts.append((count * mu * dt, (w0 + w1) / 2.0, theta))
                        groups.append((count / n, (b + left) / (2.0 * mu)))
                        c[1] = left
                        c[2] = w1
                        kept.append(c)
                    else:  # drained within the step: then it serves as the others
                        until = b / (mu - a)
                        starts.append((count * mu * until, w0 / 2.0, theta))
                        groups.append((count / n, b / (2.0 * mu)))
                        free += count * a * (dt - until)
                self._cohorts = kept
                share = held / n
                rest = 1.0 - share
                util = share + rest * (a / mu)
                free += (n - held) * a * dt
                wait_prob = self._wait_prob[i]
                if free > 0.0 and wait_prob > 0.0:
                    starts.append((free, _log(wait_prob) / theta, theta))
            else:
                # every instance builds a queue: each cohort on top of its own, the instances
                # without one from empty (a new cohort)
                grow = (a - mu) * dt
                start_dt = mu * dt
                for c in cohorts:
                    count, b, w0 = c
                    held += count
                    left, w1, half = self._grow(k, count, b, grow, mu)
                    starts.append((count * start_dt, (w0 + w1) / 2.0, theta))
                    groups.append((count / n, (b + half) / mu))
                    c[1] = left
                    c[2] = w1
                    if left > self.deepest:  # noqa: PLR1730 (hot loop: cheaper than max())
                        self.deepest = left
                if n > held:
                    fresh, w1, _ = self._grow(k, n - held, 0.0, grow, mu)
                    starts.append(((n - held) * start_dt, w1 / 2.0, theta))
                    cohorts.append([n - held, fresh, w1])
                    if fresh > self.deepest:  # noqa: PLR1730 (as above)
                        self.deepest = fresh
                    rest = (n - held) / n
                    d_rest = fresh / (2.0 * mu)
                else:
                    rest = 0.0
                util = 1.0
            end = 0.0
            for c in self._cohorts:
                end += c[0] * c[1]
            started = arrivals + backlog - end - self._refused
            busy = started * s / dt
        else:
            end = backlog + arrivals
            if end > self._cap:  # the first to boot is given as many as it may hold
                self._refused += end - self._cap
                end = self._cap
            self._arrive(arrivals)
            booting = self.booting
            d_held = (booting[0] - k * dt if booting else 3600.0) + end / (self._slots / s)
            groups.append((1.0, d_held))
            rest = 0.0
            # the first to boot is given every waiting request
            self._cohorts = [[1, end, self._wait_at(k, end)]]
            if end > self.deepest:  # noqa: PLR1730 (as above)
                self.deepest = end
            util = 0.0
            busy = 0.0
            started = 0.0
        self.backlog = end
        return groups, d_rest, rest, util, busy, started, starts

    def _grow(
        self, k: int, count: float, b: float, grow: float, mu: float
    ) -> tuple[float, float, float]:
        """``count`` instances holding ``b`` each, given ``grow`` more than they serve: the
        queue at the step's end, the wait of the request starting then and the step's mean
        growth. With a router limit, what would pass it is refused: the queue stays full, its
        head's wait that of a full queue."""
        left = b + grow
        cap = self._cap
        if left > cap:
            self._refused += count * (left - cap)
            return cap, cap / mu, (cap - b) / 2.0
        return left, self._wait_at(k, left), grow / 2.0

    def _head_wait(self, k: int, left: float, mu: float) -> float:
        """The wait of the request starting at the end of step ``k`` at an instance draining
        ``left``: from the arrivals' history, first in, first out; with a router limit, at
        least a full queue's (the history counts the refused too, and a queue kept full was
        given requests only as fast as it served them)."""
        w1 = self._wait_at(k, left)
        if self.router_queue is None:
            return w1
        return max(w1, left / mu)

    def _arrive(self, per_instance: float) -> None:
        """Adds a step's arrivals per instance to the queue's history."""
        cum = self._cum
        cum.append(cum[-1] + per_instance)

    def _wait_at(self, k: int, left: float) -> float:
        """The wait at step ``k``'s end of the request that starts then at an instance holding
        ``left``: the time since the arrivals per instance reached ``left`` looking back."""
        cum = self._cum
        top = cum[-1]
        dt = self.dt
        reach = top - left
        if reach <= 0.0:  # more queued than the history holds (instances left): its start
            return (k + 1 - self._cum_k) * dt
        j = bisect_left(cum, reach)
        lo = cum[j - 1]
        arrived = (j - 1 + (reach - lo) / (cum[j] - lo)) * dt  # since the queue began
        return (k + 1 - self._cum_k) * dt - arrived

    def _mixed(  # noqa: PLR0917 (hot loop: positional)
        self,
        i: int,
        s: float,
        theta: float,
        rho: float,
        arrivals: float,
        queued: Queued | None,
    ) -> tuple[list[tuple[float, float]], float, float]:
        """A mixture: groups of the arrivals wait behind a backlog (each cohort's, its delay),
        the rest behind ``d_rest`` (a queue building from empty) or only their instance's
        queueing. Returns the components, the p95 (ms) and the share over the SLO; counts the
        arrivals in the histogram."""
        groups, d_rest, rest = queued[:3] if queued is not None else ([], 0.0, 1.0)
        rest_prob = 1.0 if d_rest > 0.0 or rho >= RHO_CAP else self._wait_prob[i]
        comps = [g for g in groups if g[0] > 0.0]
        if rest > 0.0 and rest_prob > 0.0:
            comps.append((rest, d_rest + math.log(rest_prob) / theta))
        p95 = 1000.0 * _mix_quantile(comps, 0.05, theta)
        over = _mix_over(comps, self.slo_s, theta)
        if arrivals > 0.0:
            hist = self.hist
            for weight, delay, level in (
                *((w, d, 1.0) for w, d in groups),
                (rest, d_rest, rest_prob),
            ):
                if weight <= 0.0:
                    continue
                # a delay bin (everyone waits), or -1: the instance's stationary queueing
                dbin = (
                    int(8.0 * math.log2(1.0 + 1000.0 * delay))
                    if delay > 0.0 or level >= 1.0
                    else -1
                )
                key = (i, dbin, s)
                hist[key] = hist.get(key, 0.0) + arrivals * weight
        return comps, p95, over

    # --- figures at the end -------------------------------------------------------------

    def attainment(self) -> tuple[float, int]:
        """Expected share of minutes whose p95 queue time is within the SLO, and the number of
        minutes.

        A minute passes when at most 5% of its requests wait longer than the SLO. The model
        gives the expected share ``f``; the share a minute really has varies around it (a
        finite, correlated sample of requests, as for the signal), so a minute passes with
        probability ``Phi((0.05 - f) / sd)``, ``sd = sqrt(f (1 - f) * k / requests)``.
        """
        ok = 0.0
        k = self.noise_k
        for bad, total in zip(self.minute_bad, self.minute_total, strict=True):
            if total <= 0.0:
                ok += 1.0
                continue
            f = bad / total
            if k <= 0.0:
                ok += 1.0 if f <= 0.05 else 0.0
                continue
            sd = math.sqrt(max(f * (1.0 - f), 1e-9) * k / total)
            ok += 0.5 * (1.0 + math.erf((0.05 - f) / (sd * math.sqrt(2.0))))
        minutes = len(self.minute_total)
        return (ok / minutes if minutes else 1.0), minutes

    def minute_p95_series(self) -> list[float]:
        return self.minute_p95

    def quantiles(self) -> tuple[float, float, float]:
        """p95, p99 and max queue time (ms) over every request of the run; the max is the
        quantile at ``1 - 1/N`` for ``N`` requests."""
        comps = []
        total = 0.0
        hist = dict(self.hist)
        for i, weight in enumerate(self._hist0):
            if weight > 0.0:
                hist[(i, -1, self._service)] = hist.get((i, -1, self._service), 0.0) + weight
        for (i, dbin, s), weight in hist.items():
            delay = (2.0 ** (dbin / 8.0) - 1.0) / 1000.0 if dbin >= 0 else 0.0
            theta = self.q.theta[i] / s
            wait_prob = 1.0 if delay > 0.0 or i >= RHO_CAP * RHO_BINS else self.q.wait_prob[i]
            comps.append((weight, wait_prob, theta, delay))
            total += weight
        top = 1.0 - 1.0 / total if total > 1.0 else 0.999
        p95, p99, worst = (1000.0 * _mixture_quantile(comps, total, q) for q in (0.95, 0.99, top))
        return p95, p99, worst


def _mix_over(comps: list[tuple[float, float]], x: float, theta: float) -> float:
    """Share of requests waiting longer than ``x``, of groups ``(weight, knee)``: a group waits
    more than ``x`` with probability ``min(1, exp(-theta (x - knee)))``."""
    total = 0.0
    for weight, knee in comps:
        total += weight if x <= knee else weight * math.exp(-theta * (x - knee))
    return total


def _mix_quantile(comps: list[tuple[float, float]], tail: float, theta: float) -> float:
    """The wait ``x >= 0`` exceeded by a share ``tail`` of the requests (closed form: between
    two knees the groups above count whole, the tails of those below add up)."""
    if not comps or _mix_over(comps, 0.0, theta) <= tail:
        return 0.0
    ranked = sorted(comps, key=lambda c: c[1])  # by knee, lowest first
    whole = math.fsum(w for w, _ in ranked)
    # from the lowest knee up: the groups at or below ``top`` in their tails (their sum of
    # ``w e^(theta knee)`` kept relative to the highest of them), the others whole
    peak = -math.inf
    acc = 0.0
    for j, (weight, knee) in enumerate(ranked):
        v = theta * knee + math.log(weight)
        if v > peak:
            acc = acc * math.exp(peak - v) + 1.0 if peak > -math.inf else 1.0
            peak = v
        else:
            acc += math.exp(v - peak)
        whole -= weight
        if tail <= whole:
            continue
        x = (peak + math.log(acc) - math.log(tail - whole)) / theta
        upper = ranked[j + 1][1] if j + 1 < len(ranked) else math.inf
        if x <= upper:
            return max(0.0, x)
    return 0.0


def _mixture_quantile(
    comps: list[tuple[float, float, float, float]], total: float, level: float
) -> float:
    """The ``level`` quantile of a mixture of shifted exponential tails (bisection)."""
    if total <= 0.0:
        return 0.0
    target = (1.0 - level) * total

    def over(x: float) -> float:
        acc = 0.0
        for weight, wait_prob, theta, delay in comps:
            if x < delay:
                acc += weight
            elif wait_prob > 0.0:
                p = wait_prob * math.exp(-theta * (x - delay))
                acc += weight * (p if p < 1.0 else 1.0)
        return acc

    if over(0.0) <= target:
        return 0.0
    lo, hi = 0.0, 1.0
    while over(hi) > target and hi < 1e7:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if over(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _tail_quantile(terms: list[tuple[float, float, float]], target: float) -> float:
    """The wait ``x >= 0`` that ``target`` requests exceed, of groups ``(requests, knee,
    theta)`` each waiting longer than ``x`` with probability ``min(1, exp(-theta (x - knee)))``:
    Newton's method on the log of the count over ``x``, kept within a bracket (bisection)."""
    if target <= 0.0:
        target = 1e-12

    def over(x: float) -> tuple[float, float]:
        acc = slope = 0.0
        for count, knee, theta in terms:
            if x <= knee:
                acc += count
            else:
                v = count * math.exp(-theta * (x - knee))
                acc += v
                slope += theta * v
        return acc, slope

    f, slope = over(0.0)
    if f <= target:
        return 0.0
    total = math.fsum(c for c, _, _ in terms)
    # above this every group is within its share of the target
    hi = max(knee + math.log(total / target) / theta for _, knee, theta in terms)
    lo, x = 0.0, 0.0
    log_target = math.log(target)
    for _ in range(60):
        # f > target at lo, <= at hi; a Newton step on log f from x, else the midpoint
        nxt = x + (math.log(f) - log_target) * f / slope if slope > 0.0 else hi
        if not lo < nxt < hi:
            nxt = (lo + hi) / 2.0
        x = nxt
        f, slope = over(x)
        if f > target:
            lo = x
        else:
            hi = x
        if hi - lo < 1e-5 or abs(f - target) <= 1e-9 * target:
            break
    return x
