"""Generated traffic: seeded traces of shapes the bundled real traces lack.

``generate(name, days=2, seed=1)`` returns a ``Trace`` (the same object ``read_trace`` gives),
so anything that replays a file replays a scenario: ``autoscaler simulate --scenario flash50
--days 2 --seed 1``, or from Python ``prepare(generate("flash50"), setup)``. ``write_trace``
writes one as a CSV (``python -m autoscaler.sim.scenarios flash50 --days 2 --out f.csv``).

Each bin holds the expected arrivals in it (a rate times the bin width, not a Poisson draw): the
models add the randomness of arrivals themselves. Levels are relative (a base of 1 request per
second); ``--peak-instances`` scales a trace to the app. The shapes (``SCENARIOS``):

- ``diurnal``: a daily cycle (peak in the afternoon UTC, night at a fifth of the peak) with a
  weekly one (Saturday and Sunday at 55%), and slow random wander (10%, half-hour memory).
- ``flash10`` / ``flash50``: the diurnal traffic, plus two flash crowds a day at random times:
  the load rises to 10x (50x) the usual within 20 to 60 s, holds 3 to 15 minutes and decays
  back over 10 to 30 minutes. The first comes within the first six hours.
- ``bursty``: on/off traffic (a Markov-modulated rate): off at 1x for exponentially distributed
  spells (mean 10 minutes), on at 4x (mean 3 minutes), switching instantly.
- ``ramp``: slow ramps: from 1x up to 6-10x over 2 to 6 hours, then back down as slowly.
- ``step``: step changes: the level jumps at once to a new one (1x to 8x) every 30 minutes to
  4 hours.
- ``gaps``: the diurnal traffic, with no requests at all for 2 to 6 hours each day (the first
  gap starts within the first six hours).
- ``inference``: a small base rate (1x, little wander) with sudden bursts of 5 to 20x lasting
  2 to 15 minutes, one every 30 minutes to 3 hours (the first within the first two hours).
"""

from __future__ import annotations

import argparse
import math
import random
from array import array
from collections.abc import Callable
from pathlib import Path

from autoscaler.sim.traces import Trace

DAY = 86_400.0
START = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday: the weekly cycle starts on it
WIDTH = 10.0  # seconds per bin

SCENARIOS: dict[str, str] = {
    "diurnal": "daily and weekly cycle with slow wander",
    "flash10": "diurnal plus flash crowds of 10x within a minute",
    "flash50": "diurnal plus flash crowds of 50x within a minute",
    "bursty": "on/off Markov-modulated: 1x for ~10 min, 4x for ~3 min",
    "ramp": "slow ramps from 1x to 6-10x and back over hours",
    "step": "step changes between levels of 1x to 8x every 0.5-4 h",
    "gaps": "diurnal with multi-hour stretches of no traffic",
    "inference": "small base rate with sudden 5-20x bursts lasting minutes",
}


def _wander(rng: random.Random, n: int, sd: float, memory_s: float) -> list[float]:
    """A multiplicative slow noise around 1 (log-AR(1) with the given spread and memory)."""
    if sd <= 0:
        return [1.0] * n
    phi = math.exp(-WIDTH / memory_s)
    kick = sd * math.sqrt(1.0 - phi * phi)
    x = rng.gauss(0.0, sd)
    out = []
    for _ in range(n):
        x = phi * x + kick * rng.gauss(0.0, 1.0)
        out.append(math.exp(x - sd * sd / 2))
    return out


def _diurnal(rng: random.Random, n: int, wander: float = 0.1) -> list[float]:
    noise = _wander(rng, n, wander, 1800.0)
    out = []
    for i in range(n):
        t = i * WIDTH
        hour = (t % DAY) / 3600.0
        # lowest at 04:00, highest at 16:00, night at 0.2 of the peak
        daily = 0.6 - 0.4 * math.cos(2 * math.pi * (hour - 4.0) / 24.0)
        weekday = int(t // DAY) % 7
        weekly = 0.55 if weekday >= 5 else 1.0
        out.append(daily * weekly * noise[i])
    return out


def _events(
    rng: random.Random, span: float, first_by: float, gap: tuple[float, float]
) -> list[float]:
    """Start times: the first uniformly in ``[0, first_by)``, then gaps drawn uniformly."""
    t = rng.uniform(0.0, first_by)
    out = []
    while t < span:
        out.append(t)
        t += rng.uniform(*gap)
    return out


def _flash(peak: float) -> Callable[[random.Random, int], list[float]]:
    def shape(rng: random.Random, n: int) -> list[float]:
        base = _diurnal(rng, n)
        span = n * WIDTH
        factor = [1.0] * n
        # two a day on average, the first within six hours
        for t0 in _events(rng, span, 6 * 3600.0, (4 * 3600.0, 20 * 3600.0)):
            rise = rng.uniform(20.0, 60.0)
            hold = rng.uniform(180.0, 900.0)
            decay = rng.uniform(600.0, 1800.0)
            for i in range(int(t0 // WIDTH), n):
                t = i * WIDTH - t0
                if t < rise:
                    f = 1.0 + (peak - 1.0) * t / rise
                elif t < rise + hold:
                    f = peak
                else:
                    f = 1.0 + (peak - 1.0) * math.exp(-3.0 * (t - rise - hold) / decay)
                    if f < 1.01:
                        break
                factor[i] = max(factor[i], f)
        # the crowd comes on top of the usual load at its daily mean, not scaled by the night
        return [b + 0.6 * (f - 1.0) for b, f in zip(base, factor, strict=True)]

    return shape


def _bursty(rng: random.Random, n: int) -> list[float]:
    out = []
    on = False
    until = rng.expovariate(1 / 600.0)
    for i in range(n):
        t = i * WIDTH
        while t >= until:
            on = not on
            until += rng.expovariate(1 / (180.0 if on else 600.0))
        out.append(4.0 if on else 1.0)
    return out


def _ramp(rng: random.Random, n: int) -> list[float]:
    noise = _wander(rng, n, 0.05, 900.0)
    out: list[float] = []
    level = 1.0
    while len(out) < n:
        top = rng.uniform(6.0, 10.0)
        for target, dur in ((top, rng.uniform(2, 6) * 3600.0), (1.0, rng.uniform(2, 6) * 3600.0)):
            steps = max(1, int(dur // WIDTH))
            for j in range(steps):
                out.append(level + (target - level) * (j + 1) / steps)
            level = target
        hold = int(rng.uniform(0.5, 2.0) * 3600.0 // WIDTH)
        out.extend([1.0] * hold)
    return [v * w for v, w in zip(out[:n], noise, strict=True)]


def _step(rng: random.Random, n: int) -> list[float]:
    out: list[float] = []
    level = 2.0
    while len(out) < n:
        out.extend([level] * int(rng.uniform(0.5, 4.0) * 3600.0 // WIDTH))
        new = level
        while abs(new - level) < 0.5:
            new = rng.uniform(1.0, 8.0)
        level = new
    return out[:n]


def _gaps(rng: random.Random, n: int) -> list[float]:
    base = _diurnal(rng, n)
    span = n * WIDTH
    for t0 in _events(rng, span, 6 * 3600.0, (20 * 3600.0, 28 * 3600.0)):
        length = rng.uniform(2.0, 6.0) * 3600.0
        for i in range(int(t0 // WIDTH), min(n, int((t0 + length) // WIDTH))):
            base[i] = 0.0
    return base


def _inference(rng: random.Random, n: int) -> list[float]:
    out = _wander(rng, n, 0.05, 600.0)
    span = n * WIDTH
    for t0 in _events(rng, span, 2 * 3600.0, (1800.0, 3 * 3600.0)):
        height = rng.uniform(5.0, 20.0)
        length = rng.uniform(120.0, 900.0)
        for i in range(int(t0 // WIDTH), min(n, int((t0 + length) // WIDTH) + 1)):
            out[i] = max(out[i], height)
    return out


_SHAPES: dict[str, Callable[[random.Random, int], list[float]]] = {
    "diurnal": _diurnal,
    "flash10": _flash(10.0),
    "flash50": _flash(50.0),
    "bursty": _bursty,
    "ramp": _ramp,
    "step": _step,
    "gaps": _gaps,
    "inference": _inference,
}


def generate(name: str, *, days: float = 2.0, seed: int = 1) -> Trace:
    """The scenario ``name`` over ``days`` days in 10 s bins, drawn from ``seed``."""
    if name not in _SHAPES:
        raise ValueError(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})")
    if not days > 0:
        raise ValueError("days must be above 0")
    n = max(2, round(days * DAY / WIDTH))
    # the seed and the name: two shapes with one seed are not the same random draw
    rng = random.Random(f"{name}:{seed}")
    rates = _SHAPES[name](rng, n)
    counts = array("d", (max(0.0, r) * WIDTH for r in rates))
    return Trace(f"scenario {name} (seed {seed}, {days:g} days)", START, WIDTH, counts, None)


def write_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` as a CSV that ``read_trace`` reads back (epoch-second times)."""
    lines = ["time,requests"]
    lines += [f"{trace.start + i * trace.width:.0f},{c:.6g}" for i, c in enumerate(trace.counts)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a generated traffic trace as CSV.")
    parser.add_argument("scenario", choices=list(SCENARIOS))
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, metavar="FILE.csv")
    args = parser.parse_args(argv)
    write_trace(generate(args.scenario, days=args.days, seed=args.seed), args.out)


if __name__ == "__main__":
    main()
