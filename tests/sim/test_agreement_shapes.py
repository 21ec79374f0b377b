"""The fast model against the exact one on every generated traffic shape (bursty ones
included), the loop closed: each model feeds the default policy its own signal. Over two seeds,
the fast model's instance-hours are within 10% of the exact model's and its SLO minutes within
1 point (``benchmarks/bench_agreement.py`` prints the figures).

Every shape agrees. A shape listed in ``KNOWN`` is expected to fail (not strictly: a policy or
model change may fix it); none is listed. ``bursty`` was, until a downscale into overload was
no longer repeated (policy rule 8) and every policy started with the oracle's formation: its
SLO minutes on the fast model were then 1.05 points above the exact model's on seeds 1 and 2
(0.65 over four seeds); then 0.09 points below (``bench_agreement.py --shapes bursty --seeds
2``), and with the upscale sized on the arrival rate (policy rule 6) 0.36 points above, every
shape within 4.5% and 0.68 points over four seeds. Before: 1.24 points below, until
the fast model's window count and requests in service carried the sampling noise the exact
model's do (the policy's early signal became sure on the exact model only); 1.85 points below
until a rate still rising within ``UP_COOLDOWN`` sized upscales; and ``inference``
(instance-hours 0.88x) while the fast model reported an instance serving only from the end of
the step after its ready time, so the learned boot read 45 s as 50 s there; it now reports what
serves at the step's end, as the exact model does. With an earlier policy ``flash10``
(0.89x) disagreed."""

from __future__ import annotations

from statistics import mean

import pytest

from autoscaler.policy import PolicyConfig
from autoscaler.sim.parallel import fork_pool
from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay
from autoscaler.sim.scenarios import SCENARIOS, generate

PEAK, DAYS, SEEDS = 5.0, 0.5, (1, 2)
HIGH = 12


def run(job: tuple[str, int, bool]) -> tuple[float, float]:
    shape, seed, exact = job
    setup = Setup(peak_instances=PEAK, exact=exact, seed=seed)
    prepared = prepare(generate(shape, days=DAYS, seed=1), setup)
    result = replay(
        prepared, setup, PolicySpec("default", 1, HIGH, PolicyConfig(high=HIGH)), series=False
    )
    return result.instance_hours, result.slo_attainment


@pytest.fixture(scope="module")
def figures() -> dict[tuple[str, int, bool], tuple[float, float]]:
    jobs = [
        (shape, seed, exact) for shape in SCENARIOS for seed in SEEDS for exact in (False, True)
    ]
    with fork_pool(2) as pool:
        return dict(zip(jobs, pool.map(run, jobs, chunksize=1), strict=True))


KNOWN: dict[str, str] = {}  # shape: why it does not agree yet


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN[s], strict=False)) if s in KNOWN else s
        for s in SCENARIOS
    ],
)
def test_fast_and_exact_agree_on_a_generated_shape(
    shape: str, figures: dict[tuple[str, int, bool], tuple[float, float]]
) -> None:
    fast = [figures[(shape, seed, False)] for seed in SEEDS]
    exact = [figures[(shape, seed, True)] for seed in SEEDS]
    hours_fast, hours_exact = mean(h for h, _ in fast), mean(h for h, _ in exact)
    slo_fast, slo_exact = mean(a for _, a in fast), mean(a for _, a in exact)
    assert hours_exact > DAYS * 24  # the policy ran more than one instance at times
    assert hours_fast == pytest.approx(hours_exact, rel=0.10)
    assert slo_fast == pytest.approx(slo_exact, abs=0.01)
