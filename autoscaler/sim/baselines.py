"""The policies a trace is replayed with: the configured engine and the baselines.

Each policy is called once per tick with what the daemon would see and returns the quantity it
wants. ``default`` is ``autoscaler.policy.decide`` itself (the daemon's code, not a copy). The
baselines are rebuilt from the documented behaviour of other autoscalers (README "Simulating
and tuning" states their defaults):

- ``static``: a fixed formation sized for the trace's peak (what people do without an
  autoscaler).
- ``hpa``: the Kubernetes Horizontal Pod Autoscaler on instance utilization with target 70%:
  ``desired = ceil(current * utilization / target)`` every 15 s, skipped within the 10%
  tolerance; booting instances count as idle when scaling up; scale-up limited to the larger
  of +4 instances and +100% per 15 s; scale-down to the highest recommendation of the last
  300 s (the stabilization window).
- ``step``: a fixed-step threshold band as the hosted queue-time autoscalers document: checked
  every 10 s on the same queue-time signal and band as the engine, up by 1 at most once every
  3 minutes, down by 1 after 10 minutes below the band and 10 minutes after any change.
- ``oracle``: knows the future load and pays for boot: at every step it asks for the fewest
  instances whose queue time meets the SLO at every step until the instances it adds would be
  ready (boot time plus one step ahead); booting instances cost. Cost ratios are against it.
- ``bound``: the oracle with no boot time (the per-step need): a lower bound on cost that no
  policy reaches when instances take time to boot.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from autoscaler.model import Decision, Instant, Metric, Observation
from autoscaler.observe import fill
from autoscaler.policy import PolicyConfig, PolicyState, decide
from autoscaler.sim.stepband import Every, StepRule, step_band

_ceil = math.ceil

BASELINES = ("static", "hpa", "step", "oracle", "bound")
POLICIES = ("default", *BASELINES)


class Policy(Protocol):
    name: str

    def __call__(
        self, t: float, current: int, signal_ms: float | None, samples: float, util: float
    ) -> int:
        """The quantity wanted at ``t`` (simulated seconds)."""
        ...


class _Window:
    """The web source's reading of one simulated window (the fields ``observe.fill`` reads),
    refilled on every tick: a month of 5 s ticks is half a million of them."""

    __slots__ = (
        "age_s",
        "busy",
        "depth",
        "finished",
        "in_use",
        "metric",
        "rate_per_s",
        "samples",
        "value_ms",
    )

    def __init__(self) -> None:
        self.metric = Metric.REQUEST_QUEUE_TIME
        self.value_ms: float | None = None
        self.samples = 0
        self.age_s: float | None = 0.0
        self.depth: int | None = None
        self.busy: int | None = None
        self.rate_per_s: float | None = None
        self.in_use: float | None = None
        self.finished: int | None = None


class App(Protocol):
    """What the engine's wrapper reads from the model of the app on every tick."""

    @property
    def ready(self) -> int: ...
    @property
    def in_use(self) -> float | None: ...


class EnginePolicy:
    """The daemon's policy engine, fed as the loop feeds it: each step's signal becomes the
    reading the web source would return, and ``autoscaler.observe`` (the daemon's own rule)
    turns it and the formation into the observation.

    The source is modelled as the daemon sees it: a window without requests reads 0 ms from 0
    samples while instances serve (their middleware publishes heartbeats), and nothing at all
    (missing) when none serves. The instances serving are the platform's ``ready``."""

    def __init__(
        self,
        cfg: PolicyConfig,
        *,
        min_samples: int,
        wall0: float,
        window_s: float = 30.0,
        name: str = "default",
        stale_after: float | None = None,
    ) -> None:
        self.name = name
        self.window_s = window_s
        self.cfg = cfg
        self.min_samples = min_samples
        # the daemon's default (``AUTOSCALER_<P>_STALE_AFTER``); a modelled reading is never old
        self.stale_after = max(60.0, 2 * window_s) if stale_after is None else stale_after
        self.wall0 = wall0
        # the run starts with the formation just set (the signal's window still filling), as
        # the daemon counts the platform's last formation change
        self.state = PolicyState(last_change=0.0)
        # reused on every call (``decide`` keeps no reference to them)
        self._window = _Window()
        self._obs = Observation(0, None)
        self._now = Instant(0.0, wall0)
        # set by the runner: the model, read for the instances serving (``ready``: what the
        # platform reports) and its mean requests in service over the window (``in_use``)
        self.app: App | None = None

    def __call__(
        self, t: float, current: int, signal_ms: float | None, samples: float, util: float
    ) -> int:
        app, window = self.app, self._window
        serving = None if app is None else app.ready
        if signal_ms is None and serving != 0:
            signal_ms = 0.0  # no requests, publishers alive: heartbeats read "no traffic"
        window.value_ms = signal_ms
        if signal_ms is None:  # nobody publishes: no value, no age
            window.age_s, window.samples, window.rate_per_s = None, 0, None
            window.in_use = None
        else:
            # a fluid model's expected count: any positive count is at least one request
            window.age_s = 0.0
            window.samples = _ceil(samples) if samples > 0.0 else 0
            window.rate_per_s = samples / self.window_s  # what the source reports as its rate
            # the model's mean requests in service over the window, as the middleware's busy
            # time
            window.in_use = None if app is None else app.in_use
        obs = fill(self._obs, current, serving, window, self.stale_after, self.min_samples)
        now = self._now
        now.mono = t
        now.wall = self.wall0 + t
        decision, self.state = decide(self.cfg, self.state, obs, now)
        return decision.desired


@contextmanager
def recording_decisions() -> Iterator[list[tuple[Decision, PolicyState]]]:
    """While open, every answer of ``decide`` to a replayed ``EnginePolicy`` (the decision and
    the state after it, tick after tick) is appended to the list it yields: for measuring a
    replay (``benchmarks/bench_excess.py``, ``bench_simulate.py``). The engine answers as it
    would without; once closed, ``EnginePolicy`` calls ``decide`` itself again."""
    global decide  # noqa: PLW0603 (the name ``EnginePolicy`` calls, looked up on each tick)
    real = decide
    answers: list[tuple[Decision, PolicyState]] = []

    def recording(
        cfg: PolicyConfig, state: PolicyState, obs: Observation, now: Instant
    ) -> tuple[Decision, PolicyState]:
        answer = real(cfg, state, obs, now)
        answers.append(answer)
        return answer

    decide = recording
    try:
        yield answers
    finally:
        decide = real


class StaticPolicy:
    name = "static"

    def __init__(self, quantity: int) -> None:
        self.quantity = quantity

    def __call__(
        self, t: float, current: int, signal_ms: float | None, samples: float, util: float
    ) -> int:
        return self.quantity


class OraclePolicy:
    """Knows the future: wants, at the end of step ``k``, the most that any step until an
    instance it adds now would serve needs (steps ``k + 1`` to ``k + 1 + ahead``).

    ``ahead`` is the boot time in steps: the ``oracle`` runs with the app's boot time and pays
    for booting instances; ``bound`` runs with ``ahead = 0`` and no boot time (what no policy can
    reach when instances take time to boot)."""

    name = "oracle"

    def __init__(
        self,
        needs: list[int],
        dt: float,
        low: int,
        high: int,
        *,
        ahead: int = 0,
        name: str = "oracle",
    ) -> None:
        self.name = name
        self.dt = dt
        self.low = low
        self.high = high
        self.wants = lookahead_max(needs, ahead)

    def __call__(
        self, t: float, current: int, signal_ms: float | None, samples: float, util: float
    ) -> int:
        k = round(t / self.dt)
        need = self.wants[k] if k < len(self.wants) else current
        return min(self.high, max(self.low, need))


def lookahead_max(needs: list[int], ahead: int) -> list[int]:
    """``out[k] = max(needs[k : k + ahead + 1])`` (a sliding maximum, one pass)."""
    if ahead <= 0:
        return list(needs)
    n = len(needs)
    out = [0] * n
    window: deque[int] = deque()  # indices of decreasing needs
    for j in range(n - 1, -1, -1):
        while window and needs[window[-1]] <= needs[j]:
            window.pop()
        window.append(j)
        while window[0] > j + ahead:
            window.popleft()
        out[j] = needs[window[0]]
    return out


def boot_steps(boot_s: float, dt: float) -> int:
    """Steps from a scale-up at the end of one step until the new instance serves (the fast
    and the exact models start it in the step its ready time falls in the first half of)."""
    return max(0, math.ceil(boot_s / dt - 0.5 - 1e-9))


class HpaPolicy:
    name = "hpa"

    def __init__(
        self,
        low: int,
        high: int,
        *,
        target: float = 0.7,
        tolerance: float = 0.1,
        period: float = 15.0,
        stabilization: float = 300.0,
        up_pods: int = 4,
        up_percent: float = 100.0,
    ) -> None:
        self.low = low
        self.high = high
        self.target = target
        self.tolerance = tolerance
        self.checks = Every(period)
        self.stabilization = stabilization
        self.up_pods = up_pods
        self.up_percent = up_percent
        self.recommendations: deque[tuple[float, int]] = deque()
        self.ready: Callable[[], int] = lambda: high  # set by the runner: instances serving

    def __call__(
        self, t: float, current: int, signal_ms: float | None, samples: float, util: float
    ) -> int:
        if not self.checks.due(t):
            return current
        ready = min(self.ready(), current)
        ratio = util / self.target
        if abs(ratio - 1.0) <= self.tolerance or ready == 0:
            recommended = current
        elif ratio > 1.0:
            # not-yet-ready instances count as idle on a scale-up
            ratio = util * ready / (self.target * current)
            if ratio <= 1.0 + self.tolerance:
                recommended = current
            else:
                recommended = math.ceil(current * ratio - 1e-9)
        else:
            recommended = math.ceil(current * ratio - 1e-9)
        recommended = min(self.high, max(self.low, recommended))
        window = self.recommendations
        window.append((t, recommended))
        while window and window[0][0] <= t - self.stabilization:
            window.popleft()
        if recommended > current:
            limit = max(current + self.up_pods, math.floor(current * (1 + self.up_percent / 100)))
            return min(recommended, limit)
        if recommended < current:
            return min(current, max(r for _, r in window))
        return current


class StepPolicy(StepRule):
    name = "step"

    def __call__(
        self, t: float, current: int, signal_ms: float | None, samples: float, util: float
    ) -> int:
        if not self.checks.due(t):
            return current
        if signal_ms is None:
            return current
        want, self.clock = step_band(self.band, self.clock, t, current, signal_ms)
        return want
