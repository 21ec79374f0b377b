"""The ideal reactor of ``benchmarks/bench_reactor.py``: it knows each step's need once the step
is over, never sooner, and pays the boot like every policy but ``bound``."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_reactor import ReactorSpec, lookbehind_max

from autoscaler.sim.runner import PolicySpec, Setup, prepare, replay
from autoscaler.sim.scenarios import generate


def test_lookbehind_max_sees_only_the_steps_already_over() -> None:
    rng = random.Random(3)
    values = [rng.randrange(50) for _ in range(200)]
    for hold in (1, 3, 60):
        got = lookbehind_max(values, hold)
        assert got[0] == values[0]
        assert got[1:] == [max(values[max(0, k - hold) : k]) for k in range(1, len(values))]


def test_the_reactor_pays_the_boot_on_every_jump_the_oracle_foresees() -> None:
    setup = Setup(peak_instances=20, boot_s=120.0)
    prepared = prepare(generate("flash50", days=0.5, seed=1), setup)
    oracle = replay(prepared, setup, PolicySpec("oracle", 1, 60), series=False)
    reactor = replay(prepared, setup, ReactorSpec("reactor", 0.0, 1, 60), series=False)
    held = replay(prepared, setup, ReactorSpec("reactor5m", 300.0, 1, 60), series=False)
    assert oracle.slo_attainment >= 0.995
    # a flash crowd within a minute, instances that boot in two: minutes lost to reacting
    assert reactor.slo_attainment < oracle.slo_attainment - 0.005
    # no foresight and no holding: it runs no more than the oracle, which holds ahead of jumps
    assert reactor.instance_hours <= oracle.instance_hours
    assert held.instance_hours > reactor.instance_hours


def test_a_spared_reactor_asks_for_its_spare_on_top_of_what_it_saw() -> None:
    ratio = ReactorSpec("reactorx1.5", 0.0, 1, 60, "x1.5")
    plus = ReactorSpec("reactor+2", 0.0, 1, 60, "+2")
    assert [ratio.padded(n) for n in (0, 1, 2, 4, 10)] == [0, 2, 3, 6, 15]
    assert [plus.padded(n) for n in (0, 1, 10)] == [2, 3, 12]
    assert ReactorSpec("reactor", 0.0, 1, 60).padded(7) == 7


def test_spare_buys_the_minutes_a_jump_costs_the_bare_reactor() -> None:
    setup = Setup(peak_instances=20, boot_s=120.0)
    prepared = prepare(generate("flash50", days=0.5, seed=1), setup)
    bare = replay(prepared, setup, ReactorSpec("reactor", 0.0, 1, 60), series=False)
    spared = replay(prepared, setup, ReactorSpec("reactorx2", 0.0, 1, 60, "x2"), series=False)
    assert spared.instance_hours > bare.instance_hours
    assert spared.slo_attainment > bare.slo_attainment
