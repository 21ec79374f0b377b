"""The band a job trace's default policy and ``step`` run with: derived from the SLO where
``UP_THRESHOLD`` / ``DOWN_THRESHOLD`` are not set, as on a web trace."""

from __future__ import annotations

import pytest

from autoscaler.policy import PolicyConfig
from autoscaler.sim.workercmd import DEFAULT_SLO_MS, job_band, worker_defaults

DEFAULTS = PolicyConfig.from_settings(worker_defaults())


def test_the_up_threshold_leaves_half_the_slo_for_a_boot() -> None:
    # an instance added when the oldest job is as old as the up threshold serves it within the
    # SLO if it boots in the other half; the down threshold keeps the worker defaults' shape
    cfg, line = job_band(DEFAULTS, DEFAULT_SLO_MS, up_set=False, down_set=False)
    assert cfg.up_ms + DEFAULT_SLO_MS / 2 == DEFAULT_SLO_MS
    assert cfg.down_ms / cfg.up_ms == pytest.approx(DEFAULTS.down_ms / DEFAULTS.up_ms)
    assert line.endswith(f"(from --slo-ms {DEFAULT_SLO_MS:g})")


@pytest.mark.parametrize("factor", [0.5, 1.5, 10.0])
def test_the_band_scales_with_the_slo(factor: float) -> None:
    base, _ = job_band(DEFAULTS, DEFAULT_SLO_MS, up_set=False, down_set=False)
    cfg, line = job_band(DEFAULTS, factor * DEFAULT_SLO_MS, up_set=False, down_set=False)
    assert cfg.up_ms == pytest.approx(factor * base.up_ms)
    assert cfg.down_ms == pytest.approx(factor * base.down_ms)
    assert line.startswith(f"band: up {cfg.up_ms / 1000:g} s, down {cfg.down_ms / 1000:g} s")
    # nothing else of the settings moves
    back = cfg.replace(up_ms=DEFAULTS.up_ms, down_ms=DEFAULTS.down_ms)
    assert all(getattr(back, k) == getattr(DEFAULTS, k) for k in PolicyConfig.__slots__)


def test_a_threshold_set_wins() -> None:
    mine = DEFAULTS.replace(up_ms=30_000.0, down_ms=5_000.0)
    both, line = job_band(mine, 600_000.0, up_set=True, down_set=True)
    assert (both.up_ms, both.down_ms) == (30_000.0, 5_000.0)
    assert line == "band: up 30 s, down 5 s (as configured)"
    up, line = job_band(mine, 600_000.0, up_set=True, down_set=False)
    assert (up.up_ms, up.down_ms) == (30_000.0, 30_000.0 * DEFAULTS.down_ms / DEFAULTS.up_ms)
    assert "(up as configured, the other from --slo-ms 600000)" in line
    down, line = job_band(mine, 600_000.0, up_set=False, down_set=True)
    assert (down.up_ms, down.down_ms) == (300_000.0, 5_000.0)
    assert "(down as configured, the other from --slo-ms 600000)" in line


def test_a_down_threshold_set_above_the_derived_up_one_keeps_the_band_open() -> None:
    mine = DEFAULTS.replace(up_ms=400_000.0, down_ms=40_000.0)  # only the down one is set
    cfg, _ = job_band(mine, DEFAULT_SLO_MS, up_set=False, down_set=True)
    assert cfg.down_ms == 40_000.0 and cfg.up_ms > cfg.down_ms
    assert cfg.up_ms / cfg.down_ms == pytest.approx(DEFAULTS.up_ms / DEFAULTS.down_ms)
