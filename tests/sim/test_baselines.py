"""The baseline policies, each against its documented behaviour, and the engine adapter."""

from __future__ import annotations

import random

import pytest

from autoscaler.policy import PolicyConfig
from autoscaler.sim.baselines import (
    EnginePolicy,
    HpaPolicy,
    OraclePolicy,
    StaticPolicy,
    StepPolicy,
    boot_steps,
    lookahead_max,
    recording_decisions,
)
from autoscaler.sim.fast import FastModel, Queueing
from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay, slo_band
from autoscaler.sim.scenarios import generate


def test_hpa_sizes_to_the_utilization_target() -> None:
    hpa = HpaPolicy(1, 50)
    hpa.ready = lambda: 10
    assert hpa(15.0, 10, None, 0, 0.91) == 13  # ceil(10 * 0.91 / 0.7)


def test_hpa_skips_within_the_tolerance_and_between_syncs() -> None:
    hpa = HpaPolicy(1, 50)
    hpa.ready = lambda: 10
    assert hpa(15.0, 10, None, 0, 0.75) == 10  # ratio 1.07: inside the 10% tolerance
    assert hpa(20.0, 10, None, 0, 1.0) == 10  # next sync only at 30 s
    assert hpa(30.0, 10, None, 0, 1.0) == 15


def test_hpa_counts_booting_instances_as_idle_when_scaling_up() -> None:
    hpa = HpaPolicy(1, 50)
    hpa.ready = lambda: 5  # 5 of 10 still booting: 5 busy ones are only half of the 7 wanted
    assert hpa(15.0, 10, None, 0, 1.0) == 10


def test_hpa_limits_scale_up_to_four_or_double() -> None:
    hpa = HpaPolicy(1, 50)
    hpa.ready = lambda: 2
    assert hpa(15.0, 2, None, 0, 1.0) == 3  # ceil(2/0.7)
    hpa = HpaPolicy(1, 100)
    hpa.ready = lambda: 20
    hpa.target = 0.1
    assert hpa(15.0, 20, None, 0, 1.0) == 40  # +100% beats +4


def test_hpa_scales_down_to_the_highest_recommendation_of_five_minutes() -> None:
    hpa = HpaPolicy(1, 50)
    hpa.ready = lambda: 10
    assert hpa(0.0, 10, None, 0, 0.7) == 10  # recommends 10
    assert hpa(15.0, 10, None, 0, 0.35) == 10  # recommends 5, but 10 was seen within 300 s
    assert hpa(300.0, 10, None, 0, 0.35) == 5  # the 10 fell out of the window


def test_step_adds_one_at_most_every_three_minutes() -> None:
    step = StepPolicy(1, 10, up_ms=200, down_ms=50)
    assert step(10.0, 2, 500.0, 100, 0) == 3
    assert step(100.0, 3, 500.0, 100, 0) == 3
    assert step(190.0, 3, 500.0, 100, 0) == 4
    assert step(195.0, 4, 500.0, 100, 0) == 4  # checked every 10 s only
    assert step(400.0, 10, 500.0, 100, 0) == 10  # at the upper bound


def test_step_removes_one_after_ten_quiet_minutes() -> None:
    step = StepPolicy(1, 10, up_ms=200, down_ms=50)
    assert step(0.0, 3, 10.0, 100, 0) == 3
    assert step(590.0, 3, 10.0, 100, 0) == 3
    assert step(600.0, 3, 10.0, 100, 0) == 2
    assert step(610.0, 2, 10.0, 100, 0) == 2  # ten minutes after that change
    assert step(620.0, 2, 100.0, 100, 0) == 2  # inside the band: the quiet clock restarts
    assert step(1210.0, 2, 10.0, 100, 0) == 2
    assert step(1810.0, 2, 10.0, 100, 0) == 1
    assert step(3000.0, 1, None, 0, 0) == 1  # no signal: hold


def test_oracle_runs_the_next_steps_need_within_bounds() -> None:
    oracle = OraclePolicy([3, 7, 60, 0], 5.0, 1, 40)
    assert [oracle(5.0 * k, 1, None, 0, 0) for k in (1, 2, 3)] == [7, 40, 1]
    assert StaticPolicy(12)(5.0, 3, 900.0, 10, 1.0) == 12


def test_boot_aware_oracle_asks_for_the_most_needed_until_its_instances_serve() -> None:
    needs = [3, 7, 60, 0, 2, 5, 1, 1]
    oracle = OraclePolicy(needs, 5.0, 1, 100, ahead=2)
    # at the end of step k: the most of steps k+1 .. k+3
    assert [oracle(5.0 * k, 1, None, 0, 0) for k in range(1, 7)] == [60, 60, 5, 5, 5, 1]


def test_lookahead_max_is_a_sliding_maximum() -> None:
    rng = random.Random(5)
    values = [rng.randrange(50) for _ in range(300)]
    for ahead in (0, 1, 4, 9, 400):
        want = [max(values[k : k + ahead + 1]) for k in range(len(values))]
        assert lookahead_max(values, ahead) == want


@pytest.mark.parametrize(("boot", "dt"), [(45.0, 5.0), (10.0, 5.0), (12.0, 5.0), (0.0, 5.0)])
def test_boot_steps_is_when_the_fast_model_starts_a_new_instance(boot: float, dt: float) -> None:
    model = FastModel(
        [1.0] * 40,
        0.1,
        dt,
        queueing=Queueing(4, 1.0),
        boot_s=boot,
        slo_s=0.2,
        quantity=1,
        window_s=30.0,
    )
    k = 3
    for j in range(k + 1):
        model.step(j, 1)
    model.scale(2, (k + 1) * dt)  # at the end of step k
    serving = []
    for j in range(k + 1, 40):
        model.step(j, 2)
        serving.append(model.serving)
    assert serving.index(2) == boot_steps(boot, dt)  # serves from step k + 1 + boot_steps


def test_the_boot_aware_oracle_keeps_the_slo_with_boot_and_costs_more_than_the_bound() -> None:
    setup = Setup(peak_instances=20, boot_s=120.0)
    prepared = prepare(generate("flash50", days=0.5, seed=1), setup)
    oracle = replay(prepared, setup, PolicySpec("oracle", 1, 60), series=False)
    bound = replay(prepared, setup, PolicySpec("bound", 1, 60), series=False)
    assert oracle.slo_attainment >= 0.995
    assert bound.slo_attainment >= 0.995  # no boot: it meets the need at once
    assert oracle.instance_hours > 1.02 * bound.instance_hours


def test_band_from_the_slo_unless_set() -> None:
    cfg = PolicyConfig(up_ms=200.0, down_ms=50.0)
    derived, line = slo_band(cfg, 1600.0, up_set=False, down_set=False)
    assert (derived.up_ms, derived.down_ms) == (1600.0, 400.0)
    assert "from --slo-ms 1600" in line
    kept, line = slo_band(cfg.replace(up_ms=300.0), 1600.0, up_set=True, down_set=False)
    assert (kept.up_ms, kept.down_ms) == (300.0, 75.0)
    assert "up as configured" in line
    both, line = slo_band(cfg, 1600.0, up_set=True, down_set=True)
    assert (both.up_ms, both.down_ms) == (200.0, 50.0) and "as configured" in line


class Idle:
    """A model of the app in which no instance serves."""

    ready = 0
    in_use: float | None = None


def test_engine_policy_is_the_daemons_decide() -> None:
    engine = EnginePolicy(PolicyConfig(high=20), min_samples=5, wall0=0.0)
    assert engine(5.0, 4, 400.0, 100, 0) == 8  # auto step: 400/200 - 1 = +100%
    assert engine(10.0, 8, 400.0, 100, 0) == 8  # up cooldown
    assert engine(70.0, 8, 400.0, 2, 0) == 9  # sparse signal: one at a time
    later = EnginePolicy(PolicyConfig(high=20), min_samples=5, wall0=0.0)
    later.app = Idle()  # no instance serves: no middleware publishes, the signal is missing
    for t in range(0, 2000, 5):
        assert later(float(t), 6, None, 0, 0) == 6  # missing signal: never down


def test_recording_decisions_keeps_every_answer_of_the_replayed_engine() -> None:
    from autoscaler.policy import decide
    from autoscaler.sim import baselines

    setup = Setup(peak_instances=10, boot_s=45.0)
    prepared = prepare(generate("flash50", days=0.1, seed=1), setup)
    spec = PolicySpec("default", 1, 40, PolicyConfig(high=40))
    plain = replay(prepared, setup, spec, series=False)
    with recording_decisions() as answers:
        recorded = replay(prepared, setup, spec, series=False)
    assert baselines.decide is decide  # the engine's own again
    # one answer a tick, each the state the next one started from; the replay unchanged
    assert len(answers) == len(prepared.steps)
    assert (recorded.instance_hours, recorded.scale_events) == (
        plain.instance_hours,
        plain.scale_events,
    )
    ups = sum(1 for d, _ in answers if d.desired > d.current)
    downs = sum(1 for d, _ in answers if d.desired < d.current)
    assert ups > 0 and downs > 0
    assert ups + downs == recorded.scale_events


def test_every_policy_starts_with_what_the_oracle_starts_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app ran before the replay: a load that rises within the first boot is met by the
    formation the oracle starts with, for every policy, not by what the first step needs."""
    from array import array

    from autoscaler.sim import runner
    from autoscaler.sim.traces import Trace

    # 10 s bins: 20 requests/s for a minute rising to 60/s over the next two, then flat
    counts = array("d", [200.0 + 400.0 * min(1.0, max(0.0, (i - 6) / 12)) for i in range(60)])
    trace = Trace("rise", 0.0, 10.0, counts, None)
    setup = Setup(peak_instances=10, boot_s=120.0)
    prepared = prepare(trace, setup)
    started: list[int] = []
    make = runner.make_model

    def spy(*args: object, **kwargs: object) -> object:
        started.append(int(kwargs["quantity"]))  # type: ignore[call-overload]
        return make(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "make_model", spy)
    for name in ("oracle", "hpa", "step"):
        replay(prepared, setup, PolicySpec(name, 1, 40), series=False)
    engine = PolicyConfig(high=40)
    replay(prepared, setup, PolicySpec("default", 1, 40, engine), series=False)
    first = prepared.need_at(0)
    assert started[0] > first  # the load rises within the oracle's first boot
    assert started == [started[0]] * 4
