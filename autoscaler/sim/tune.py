"""``autoscaler tune``: search the engine's settings for the cheapest that meet the SLO.

Candidates are drawn (seeded) from a grid of thresholds, steps, sensitivity, cooldowns,
delays and forecast headroom, the configured settings always among them. On a long trace the
search screens first: every candidate runs on the trace's two busiest days plus a typical one
(against a looser target: busy days fail more minutes), and the best sixteenth (at least 6)
then run on the whole trace, where the winner is picked: the cheapest whose share of minutes
within the SLO meets the target, else the one with the highest share. Runs are
spread over ``workers`` forked processes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from autoscaler.policy import PolicyConfig
from autoscaler.sim.output import table
from autoscaler.sim.parallel import run_many
from autoscaler.sim.runner import PolicySpec, Prepared, Result, Setup

SCREEN_ABOVE_STEPS = 4 * 17_280  # screen when the trace is longer than 4 days of 5 s ticks


@dataclass(frozen=True)
class Candidate:
    up_ms: float
    down_ms: float
    up_step: int  # 0 = auto
    down_step: int
    up_sensitivity: float
    up_cooldown: float | None  # None = auto (the learned boot time)
    down_delay: float
    headroom: float

    @classmethod
    def of(cls, cfg: PolicyConfig) -> Candidate:
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})

    def config(self, base: PolicyConfig) -> PolicyConfig:
        return base.replace(**asdict(self))

    def variables(self, prefix: str) -> dict[str, str]:
        return {
            f"{prefix}UP_THRESHOLD": f"{self.up_ms:g}ms",
            f"{prefix}DOWN_THRESHOLD": f"{self.down_ms:g}ms",
            f"{prefix}UP_STEP": "auto" if self.up_step == 0 else str(self.up_step),
            f"{prefix}DOWN_STEP": str(self.down_step),
            f"{prefix}UP_SENSITIVITY": f"{self.up_sensitivity:g}s",
            f"{prefix}UP_COOLDOWN": "auto"
            if self.up_cooldown is None
            else f"{self.up_cooldown:g}s",
            f"{prefix}DOWN_DELAY": f"{self.down_delay:g}s",
            f"{prefix}HEADROOM": f"{self.headroom:g}",
        }


def candidates(base: PolicyConfig, slo_ms: float, n: int, seed: int) -> list[Candidate]:
    """The configured settings, then ``n - 1`` distinct others drawn from the grid."""
    grid = list(
        itertools.product(
            (0.5, 0.75, 1.0),  # up threshold, times the SLO
            (0.1, 0.25, 0.5),  # down threshold, times the up threshold
            (0, 1, 2, 4),
            (1, 2),
            (0.0, 10.0, 30.0),
            (15.0, 30.0, 60.0, 120.0),
            (60.0, 120.0, 300.0, 600.0, 900.0),
            (0.0, 1.0, 1.5, 1.8, 2.2, 3.0),  # headroom, standard deviations of the rate
        )
    )
    random.Random(seed).shuffle(grid)
    out = [Candidate.of(base)]
    seen = set(out)
    for up, down, up_step, down_step, sens, cool, delay, headroom in grid:
        if len(out) >= n:
            break
        cand = Candidate(
            slo_ms * up, slo_ms * up * down, up_step, down_step, sens, cool, delay, headroom
        )
        if cand not in seen:
            seen.add(cand)
            out.append(cand)
    return out


def screening_days(rates: list[float], dt: float) -> list[tuple[int, int]]:
    """Step ranges of the two days with the highest peak and the day of median volume."""
    day = max(1, round(86_400 / dt))
    chunks = [(i, min(i + day, len(rates))) for i in range(0, len(rates), day)]
    chunks = [c for c in chunks if c[1] - c[0] >= day // 2]
    by_peak = sorted(chunks, key=lambda c: max(rates[c[0] : c[1]]), reverse=True)
    picked = by_peak[:2]
    by_volume = sorted(chunks, key=lambda c: sum(rates[c[0] : c[1]]))
    median = by_volume[len(by_volume) // 2]
    if median not in picked:
        picked.append(median)
    return sorted(picked)


@dataclass
class Score:
    hours: float
    ok_minutes: float
    minutes: int

    @property
    def attainment(self) -> float:
        return self.ok_minutes / self.minutes if self.minutes else 1.0


def _rank(score: Score, target: float) -> tuple[bool, float]:
    meets = score.attainment >= target
    return (not meets, score.hours if meets else -score.attainment)


@dataclass
class Outcome:
    target: float
    evaluated: int
    screened: bool
    default: Result
    best: Result
    best_candidate: Candidate
    default_candidate: Candidate
    met: bool

    def text(self, prefix: str) -> str:
        verdict = (
            f"cheapest settings with at least {self.target:.2%} of minutes within the SLO:"
            if self.met
            else f"no candidate reached {self.target:.2%}; the closest:"
        )
        lines = [verdict]
        for name, value in self.best_candidate.variables(prefix).items():
            lines.append(f"  {name}={value}")
        rows = [replace(self.default, policy="configured"), replace(self.best, policy="tuned")]
        lines += ["", table(rows)]
        if self.screened:
            lines.append(
                "\n(screened on the busiest days and a typical one; "
                "the figures above are over the whole trace)"
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "met": self.met,
            "evaluated": self.evaluated,
            "screened": self.screened,
            "settings": self.best_candidate.variables(""),
            "tuned": replace(self.best, policy="tuned").figures(),
            "configured": replace(self.default, policy="configured").figures(),
        }


def tune(
    prepared: Prepared,
    setup: Setup,
    base: PolicyConfig,
    bounds: tuple[int, int],
    *,
    n: int,
    target: float,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Try ``n`` candidates around ``base`` (the configured engine, its band already fitted to
    the SLO) on the prepared trace, every policy within ``bounds``."""
    low, high = bounds
    cands = candidates(base, setup.slo_ms, n, setup.seed)
    specs = [PolicySpec(f"c{i}", low, high, c.config(base)) for i, c in enumerate(cands)]
    steps = len(prepared.steps)
    screened = steps > SCREEN_ABOVE_STEPS and len(cands) > 6
    finalists = list(range(len(cands)))
    if screened:
        days = screening_days(prepared.steps.rates, prepared.steps.dt)
        jobs = [(spec, a, b) for spec in specs for a, b in days]
        results = run_many(prepared, setup, jobs, workers, progress)
        scores = []
        for i in range(len(cands)):
            part = results[i * len(days) : (i + 1) * len(days)]
            scores.append(
                Score(
                    sum(r.instance_hours for r in part),
                    sum(r.slo_attainment * r.minutes for r in part),
                    sum(r.minutes for r in part),
                )
            )
        keep = max(6, math.ceil(len(cands) / 16))
        # the busiest days fail more minutes than the whole trace: screen with a looser target
        loose = max(0.0, target - (1.0 - target))
        finalists = sorted(range(len(cands)), key=lambda i: _rank(scores[i], loose))[:keep]
        if 0 not in finalists:
            finalists.append(0)
    full = run_many(prepared, setup, [(specs[i], 0, None) for i in finalists], workers, progress)
    by_index = dict(zip(finalists, full, strict=True))
    best_i = min(
        finalists,
        key=lambda i: _rank(
            Score(by_index[i].instance_hours, by_index[i].slo_attainment, 1), target
        ),
    )
    best = by_index[best_i]
    return Outcome(
        target=target,
        evaluated=len(cands),
        screened=screened,
        default=by_index[0],
        best=best,
        best_candidate=cands[best_i],
        default_candidate=cands[0],
        met=best.slo_attainment >= target,
    )
