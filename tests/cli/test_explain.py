"""``explain`` has a sentence for every reason the policy can give."""

from __future__ import annotations

import pytest

from autoscaler.config import load
from autoscaler.explain import sentence
from autoscaler.model import Action, Decision, Reason, Status


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_sentence(reason):
    process = load({}).processes["web"]
    d = Decision("web", Action.HOLD, 3, 3, reason, 40.0, Status.OK, 1, 10)
    text = sentence(d, process, "redis: connection refused")
    assert text.startswith("web: hold at 3 (")
    assert len(text) > len("web: hold at 3 ()") + 10


def test_the_spec_example_sentence():
    process = load({}).processes["web"]
    d = Decision("web", Action.HOLD, 3, 3, Reason.IN_BAND, 40.0, Status.OK, 1, 10)
    assert (
        sentence(d, process) == "web: hold at 3 (p95 queue time 40.0 ms is inside 50.0 ms..200 ms)"
    )


def test_forecast_and_probe_sentences_say_why():
    process = load({}).processes["web"]
    up = Decision("web", Action.UP, 5, 6, Reason.FORECAST, 90.0, Status.OK, 1, 10)
    assert sentence(up, process) == (
        "web: up from 5 to 6 (the request rate to expect (its recent mean plus up to 1.8 "
        "standard deviations, as the app's recent record above the band asks) needs 6 "
        "instances; p95 queue time 90.0 ms now)"
    )
    probe = Decision("web", Action.DOWN, 5, 4, Reason.PROBE, 10.0, Status.OK, 1, 10)
    assert "30m" in sentence(probe, process) and "trying fewer" in sentence(probe, process)


def test_the_cooldown_sentences_say_which_cooldown_is_in_force():
    auto = load({}).processes["web"]
    held = Decision("web", Action.HOLD, 3, 3, Reason.UP_COOLDOWN, 400.0, Status.OK, 1, 10)
    assert "less than 1m (UP_COOLDOWN auto: no boot read yet) ago" in sentence(held, auto)
    held.boot_s = 42.4
    assert "less than 42s (UP_COOLDOWN auto: the boot time learned) ago" in sentence(held, auto)
    fixed = load({"AUTOSCALER_WEB_UP_COOLDOWN": "90s"}).processes["web"]
    assert "less than 1m30s (UP_COOLDOWN) ago" in sentence(held, fixed)
    held.boot_s = 120.0  # a web process waits at most 1m, whatever the boot
    assert "less than 1m (UP_COOLDOWN auto: at most that; the boot learned 2m) ago" in sentence(
        held, auto
    )
    idle = Decision("web", Action.DOWN, 2, 0, Reason.IDLE, 0.0, Status.OK, 0, 10)
    idle.boot_s = 20.0
    assert "for 20s (UP_COOLDOWN auto: the boot time learned)" in sentence(idle, auto)


def test_a_worker_waits_its_whole_learned_boot():
    env = {"AUTOSCALER_PROCESSES": "worker", "AUTOSCALER_WORKER_SOURCE": "rq"}
    worker = load(env).processes["worker"]
    held = Decision("worker", Action.HOLD, 3, 3, Reason.UP_COOLDOWN, 20_000.0, Status.OK, 0, 10)
    held.boot_s = 120.0
    assert "less than 2m (UP_COOLDOWN auto: the boot time learned) ago" in sentence(held, worker)
    idle = Decision("worker", Action.DOWN, 2, 0, Reason.IDLE, 0.0, Status.OK, 0, 10)
    idle.boot_s = 120.0
    assert "for 2m (UP_COOLDOWN auto: the boot time learned)" in sentence(idle, worker)


def test_jobs_ended_between_readings_say_why_the_worker_is_kept():
    env = {"AUTOSCALER_PROCESSES": "worker", "AUTOSCALER_WORKER_SOURCE": "rq"}
    worker = load(env).processes["worker"]
    kept = Decision("worker", Action.HOLD, 1, 1, Reason.JOBS_ENDED, 0.0, Status.OK, 0, 10)
    kept.boot_s = 120.0
    text = sentence(kept, worker)
    assert "jobs ended between readings within 2m (UP_COOLDOWN auto" in text
    assert "longer than 10.0 s (UP_THRESHOLD)" in text


def test_a_recurring_burst_says_it_was_learned_and_drained_within_the_boot():
    env = {"AUTOSCALER_PROCESSES": "worker", "AUTOSCALER_WORKER_SOURCE": "rq"}
    worker = load(env).processes["worker"]
    ahead = Decision("worker", Action.UP, 0, 8, Reason.RECURRING, 0.0, Status.OK, 0, 20)
    ahead.boot_s = 45.0
    text = sentence(ahead, worker)
    assert "equal intervals (learned)" in text
    assert "8 instances run the most work one of them brought within 45s" in text
