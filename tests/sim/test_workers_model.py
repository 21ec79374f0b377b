"""The worker model against hand-computed cases: exact waits with one instance, slots, the
Heroku-style stop (grace, interruption, lost work), scale from zero, the oracle, job traces."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from autoscaler.policy import PolicyConfig
from autoscaler.sim.jobmodel import Job, WorkerModel
from autoscaler.sim.jobs import JobTrace, TraceError, prepare_jobs, read_job_trace, resample
from autoscaler.sim.workersim import (
    HireFireWorkers,
    StepWorkers,
    WorkerSetup,
    WorkerSpec,
    fewest_slots,
    oracle_plan,
    replay_jobs,
    start_in_time,
    ticks_for,
)

DATA = Path(__file__).parent.parent / "data" / "traces"


def model(jobs: list[tuple[float, float]], quantity: int = 1, **kw: float) -> WorkerModel:
    items = [Job(due, duration, 0) for due, duration in jobs]
    return WorkerModel(
        items,
        1,
        concurrency=int(kw.pop("concurrency", 1)),
        boot_s=kw.pop("boot_s", 0.0),
        quantity=quantity,
        **kw,  # type: ignore[arg-type]
    )


def trace(jobs: list[tuple[float, float]], queues: list[int] | None = None) -> JobTrace:
    ids = queues or [0] * len(jobs)
    names = [f"q{i}" for i in range(max(ids) + 1)]
    return JobTrace("t", 0.0, [a for a, _ in jobs], [d for _, d in jobs], ids, names)


def test_one_instance_one_slot_waits_exactly_fifo() -> None:
    m = model([(0.0, 10.0), (1.0, 5.0), (2.0, 1.0)])
    # at 5 s: the first runs, the other two wait; the oldest waiting arrived at 1 s
    assert m.signal(5.0) == (4000.0, 2, 1)
    assert m.signal(12.0) == (10000.0, 1, 1)  # the second started at 10, the third waits
    m.close(20.0)
    assert m.waits == [0.0, 9.0, 13.0]  # starts at 0, 10, 15
    assert m.done == 3
    assert m.paid_s == 20.0


def test_slots_of_one_instance_run_jobs_side_by_side() -> None:
    m = model([(0.0, 10.0), (0.0, 10.0), (0.0, 10.0)], concurrency=2)
    assert m.signal(1.0) == (1000.0, 1, 2)
    m.close(30.0)
    assert sorted(m.waits) == [0.0, 0.0, 10.0]


def test_queues_are_served_in_the_order_they_were_first_seen() -> None:
    # one slot busy until 10; then "q0" (first seen) before "q1", though q1's job is older
    jobs = [Job(0.0, 10.0, 0), Job(1.0, 1.0, 1), Job(2.0, 1.0, 0)]
    m = WorkerModel(jobs, 2, concurrency=1, boot_s=0.0, quantity=1)
    assert m.signal(5.0) == (4000.0, 2, 1)  # the oldest due job of any queue: 4 s
    m.close(20.0)
    assert m.waits == [0.0, 8.0, 10.0]  # q0's job at 2 starts at 10, q1's at 11


def test_a_new_instance_takes_jobs_after_its_boot_and_is_paid_from_the_start() -> None:
    m = model([(0.0, 5.0), (0.0, 5.0)], quantity=1, boot_s=45.0)
    assert m.scale(2, 1.0) == 2
    # the second job waits for the first instance (free at 5), not for the boot (46)
    m.close(100.0)
    assert m.waits == [0.0, 5.0]
    assert m.paid_s == 100.0 + 99.0


def test_a_downscale_stops_the_newest_and_interrupts_what_outlives_the_grace() -> None:
    m = model([(0.0, 100.0), (0.0, 100.0)], quantity=2)
    m.scale(1, 10.0)  # instance 2 gets SIGTERM at 10; its job runs on past the 30 s grace
    assert m.signal(39.0) == (0.0, 0, 2)
    assert m.signal(41.0) == (41000.0, 1, 1)  # put back at 40, due since 0: 41 s old
    m.close(300.0)
    assert m.interrupted == 1
    assert m.interrupted_s == 40.0  # the work it had done
    assert sorted(m.waits) == [0.0, 60.0]  # queued again from 40 until instance 1 frees at 100
    assert m.paid_s == 300.0 + 40.0
    assert m.minute_interrupts == {0: 1}


def test_a_job_that_ends_within_the_grace_is_not_interrupted() -> None:
    m = model([(0.0, 100.0), (0.0, 25.0)], quantity=2)
    m.scale(1, 10.0)
    m.close(200.0)
    assert m.interrupted == 0
    assert m.waits == [0.0, 0.0]
    assert m.paid_s == 200.0 + 25.0  # the stopping instance left when its job ended


def test_a_stopping_instance_takes_no_new_job() -> None:
    m = model([(0.0, 100.0), (0.0, 20.0), (15.0, 5.0)], quantity=2)
    m.scale(1, 10.0)
    m.close(200.0)
    # the job due at 15 waits for instance 1 (free at 100) although instance 2 is up until 20
    assert m.waits == [0.0, 0.0, 85.0]


def test_the_oracle_model_stops_only_idle_instances() -> None:
    m = model([(0.0, 100.0), (0.0, 100.0)], quantity=3, stop_idle_only=True)
    assert m.scale(1, 10.0) == 2  # the idle one goes; the two busy ones stay
    m.close(200.0)
    assert m.interrupted == 0


def engine(low: int = 0, high: int = 10) -> PolicyConfig:
    return PolicyConfig(
        "worker", low=low, high=high, up_ms=10_000.0, down_ms=2_000.0, scale_from_zero=True
    )


def test_default_scales_from_zero_at_the_next_tick_and_back_to_zero() -> None:
    # the first job comes after the first boot time: the replay starts with no instance
    jobs = trace([(102.0, 30.0), (4000.0, 1.0)])
    setup = WorkerSetup(concurrency=1, boot_s=45.0, slo_ms=60_000.0, interval_s=5.0)
    plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
    r = replay_jobs(jobs, setup, WorkerSpec("default", 0, 10, engine()), plan)
    # due at 102, seen at the 105 s tick: 0 -> 1, serving from 150 s: a 48 s wait; the second,
    # due at 4000, is seen at the tick of that moment and waits the 45 s boot
    assert (r.p95_wait_s, r.max_wait_s, r.jobs) == (48.0, 48.0, 2)
    assert r.decisions["scale_from_zero"] == 2
    # back to 0 once nothing was due or running for UP_COOLDOWN (auto: the 45 s boot read on
    # the way up): the job ran 150-180 s, last seen busy at the 175 s tick, stopped in minute 3
    assert r.decisions["idle"] == 1
    assert r.instances[:6] == [0, 1, 1, 1, 0, 0]
    assert r.interrupted_jobs == 0
    assert r.slo_attainment == 1.0
    # never more than one instance, and not a whole day of it
    assert r.max_instances == 1
    assert 0 < r.instance_hours < 0.5


def test_the_model_reports_booted_instances_as_ready() -> None:
    m = model([], quantity=1, boot_s=45.0)
    assert (m.quantity, m.serving) == (1, 1)
    m.scale(3, 10.0)
    m.advance(54.0)
    assert (m.quantity, m.serving) == (3, 1)
    m.advance(55.0)
    assert (m.quantity, m.serving) == (3, 3)
    m.scale(1, 60.0)  # stopping ones no longer serve
    assert (m.quantity, m.serving) == (1, 1)
    m.scale(2, 70.0)
    m.scale(1, 80.0)  # stopped while booting: never serves
    m.advance(200.0)
    assert (m.quantity, m.serving) == (1, 1)


@pytest.mark.parametrize("boot", [10.0, 45.0, 120.0])
def test_default_learns_the_boot_from_the_model(boot: float) -> None:
    jobs = trace([(202.0, 30.0), (4000.0, 1.0), (4500.0, 1.0)])  # none in the first boot
    setup = WorkerSetup(concurrency=1, boot_s=boot, slo_ms=60_000.0, interval_s=5.0)
    plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
    spec = WorkerSpec("default", 0, 10, engine())
    policy = spec.build(jobs, setup, plan)
    replay_jobs(jobs, setup, spec, plan, policy=policy)
    # each upscale timed to the tick its instance serves (ticks every 5 s; with a 120 s boot
    # the first job waits past the 60 s default cooldown and a second instance restarts the
    # timing at 265 s, and the run ends before the third scale from zero serves)
    boots = policy.state.boots  # type: ignore[attr-defined]
    assert boots == ((boot,) * 2 if boot > 60 else (boot,) * 3)


def test_default_grows_to_the_jobs_there_are_and_never_past_them() -> None:
    # 60 jobs of 100 s at once, 5 slots per instance, a 45 s boot and UP_COOLDOWN 45 s: the
    # overload doubles 1 -> 2 -> 4 -> 8, each the tick after the instances before came to serve
    # (draining: their pace is read first); at 200 s the first 10 jobs are done and the next
    # doubling (16) is capped at the 10 instances that run the 50 left at once (the slots read
    # off the busy jobs while jobs wait)
    # (five minutes in: the replay starts with what the first boot time's jobs need, none)
    jobs = trace([(300.0, 100.0)] * 60 + [(3300.0, 1.0)])
    setup = WorkerSetup(concurrency=5, boot_s=45.0, slo_ms=600_000.0, interval_s=5.0)
    plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
    cfg = engine().replace(up_cooldown=45.0)
    r = replay_jobs(jobs, setup, WorkerSpec("default", 0, 100, cfg), plan)
    assert r.max_instances == 10
    assert r.decisions["up_to_jobs"] == 1
    assert r.interrupted_jobs == 0
    # idle for UP_COOLDOWN after the burst: to 0 within 13 minutes
    assert r.instances[11:13] == [10, 0]
    assert r.decisions["scale_from_zero"] == 2


def test_default_never_stops_an_instance_while_a_job_runs() -> None:
    # one slot each: a 2,000 s job beside two short ones; the platform stops the newest
    # instance, which may run the long job, so all three stay until it ends, then go to 0
    jobs = trace([(300.0, 2000.0), (300.0, 10.0), (300.0, 10.0), (4300.0, 1.0)])
    setup = WorkerSetup(concurrency=1, boot_s=10.0, slo_ms=600_000.0, interval_s=5.0)
    plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
    cfg = engine().replace(up_cooldown=10.0)
    r = replay_jobs(jobs, setup, WorkerSpec("default", 0, 10, cfg), plan)
    assert r.interrupted_jobs == 0 and r.interrupted_job_s == 0.0
    assert r.max_instances == 3
    # every minute up to the long job's end keeps the instances it had at its peak
    assert min(r.instances[6:38]) == 3
    assert r.instances[41] == 0


def test_slots_start_jobs_in_time_in_order_on_the_slot_free_first() -> None:
    # at t = 0 one slot runs a job until 10 s; two jobs due now, each to start within 5 s
    busy, jobs = [10.0], [(0.0, 5.0, 3.0), (0.0, 5.0, 3.0)]
    assert not start_in_time(busy, 1, 0.0, jobs)  # the one slot is free only at 10 s
    assert not start_in_time(busy, 2, 0.0, [*jobs, (0.0, 5.0, 3.0)])  # the third at 6 s
    assert start_in_time(busy, 2, 0.0, jobs)  # the new slot runs them at 0 s and 3 s
    assert fewest_slots(busy, 0.0, jobs, 1, 3) == 2
    assert fewest_slots(busy, 0.0, [*jobs, (0.0, 5.0, 3.0)], 1, 4) == 3
    # a job starts no sooner than it is ready: arriving at 4 s, it still makes its 6 s
    assert start_in_time([], 1, 0.0, [(0.0, 1.0, 5.0), (4.0, 6.0, 1.0)])
    assert not start_in_time([], 1, 0.0, [(0.0, 1.0, 7.0), (4.0, 6.0, 1.0)])
    assert start_in_time([], 0, 0.0, []) and not start_in_time([], 0, 0.0, jobs)


def test_the_oracle_boots_ahead_and_meets_the_slo_without_interruptions() -> None:
    burst = [(600.0, 30.0)] * 40 + [(1800.0, 5.0)]
    jobs = trace(burst)
    setup = WorkerSetup(concurrency=5, boot_s=45.0, slo_ms=60_000.0, interval_s=5.0)
    plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
    # 40 jobs of 30 s, each to start within 60 s: 15 slots in waves at 600, 630 and 660
    assert max(plan) == 3
    r = replay_jobs(jobs, setup, WorkerSpec("oracle", 0, 10), plan)
    assert r.max_wait_s <= 60.0
    assert r.slo_attainment == 1.0
    assert r.interrupted_jobs == 0
    assert r.max_instances == 3


def test_hirefire_sizes_by_jobs_per_instance_and_drops_only_when_empty() -> None:
    p = HireFireWorkers(0, 10, ratio=5.0)
    assert p(60.0, 0, 0.0, 12, 0) == 3
    assert p(90.0, 3, 0.0, 0, 1) == 3  # not a checkup yet
    assert p(120.0, 3, 0.0, 0, 1) == 3  # one job still running: not decrementable
    assert p(180.0, 3, 0.0, 0, 0) == 0


def test_step_adds_one_with_a_cooldown_and_removes_one_after_its_delay() -> None:
    p = StepWorkers(0, 10, up_ms=10_000.0, down_ms=2_000.0)
    assert p(10.0, 0, 500.0, 1, 0) == 1  # a job waits at 0: one at once
    assert p(20.0, 1, 20_000.0, 5, 1) == 1  # within 3 minutes of that upscale
    assert p(190.0, 1, 20_000.0, 5, 1) == 2
    assert p(200.0, 2, 20_000.0, 5, 2) == 2
    assert p(370.0, 2, 20_000.0, 5, 2) == 3
    assert p(380.0, 3, 0.0, 0, 3) == 3  # below the band: 10 minutes first
    assert p(980.0, 3, 0.0, 0, 3) == 2  # busy jobs do not stop it (no busy tracking)


def test_reads_the_nasa_job_slice() -> None:
    t = read_job_trace(DATA / "nasa-ipsc-jobs-3d.csv.gz")
    assert len(t) == 593
    assert t.queues == ["default"]
    assert t.arrivals[0] == 0.0 and t.arrivals == sorted(t.arrivals)
    assert t.start == 749693590.0  # 1993-10-04T00:13:10Z
    assert t.durations[0] == 135.0


def test_duration_scale_and_peak_instances(tmp_path: Path) -> None:
    t = read_job_trace(DATA / "nasa-ipsc-jobs-3d.csv.gz")
    scaled, factor = prepare_jobs(t, duration_scale=0.1)
    assert factor == 1.0 and scaled.durations[0] == pytest.approx(13.5)
    more, factor = prepare_jobs(t, duration_scale=0.1, concurrency=5, peak_instances=20)
    assert factor > 1
    assert len(more) == pytest.approx(len(t) * factor, rel=0.05)
    twice = resample(t, 2.0, seed=1)
    assert len(twice) == 2 * len(t) and twice.arrivals[:2] == [0.0, 0.0]


def test_reads_a_binned_job_trace_with_drawn_durations(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("time,jobs\n0,3\n60,0\n120,2\n")
    t = read_job_trace(path, duration_s=20.0, duration_cv=0.0, seed=3)
    assert len(t) == 5 and t.binned
    assert all(d == 20.0 for d in t.durations)
    assert all(0 <= a < 60 for a in t.arrivals[:3]) and all(120 <= a < 180 for a in t.arrivals[3:])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,duration_s\n0,ten\n", ":2: duration_s 'ten' is not a number"),
        ("time,duration_s\n0,-1\n", ":2: duration_s '-1' must be 0 or more"),
        ("time,duration_s,queue\n0,1\n", ":2: 2 fields where the header has 3"),
        ("time,duration_s\nnoon,1\n", ":2: time 'noon' is neither ISO-8601 nor epoch seconds"),
        ("time,jobs\n0,1\n60,1.5\n", ":3: jobs '1.5' must be a whole number >= 0"),
        ("time,jobs\n0,1\n60,1\n90,1\n", ":4: bin of 30 s where the bins are 60 s wide"),
        ("time,duration_s\n", "has no jobs"),
    ],
)
def test_a_malformed_job_trace_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace(".", r"\.")):
        read_job_trace(path)


def test_default_meets_hourly_bursts_ahead_once_it_has_seen_four() -> None:
    # 600 one-second jobs at the top of every hour, 5 slots per instance, a 45 s boot: the
    # first four bursts are met as they come (a cold start, then doublings: the oldest waits
    # over two minutes); from the fifth on, the schedule learned, the instances that drain
    # 600 slot-seconds within the 45 s boot (3) are started a boot ahead and serve at :00
    # (from the first hour on: the replay starts with what the first boot time's jobs need)
    jobs = trace([(h * 3600.0 + i * 0.001, 1.0) for h in range(1, 9) for i in range(600)])
    setup = WorkerSetup(concurrency=5, boot_s=45.0, slo_ms=60_000.0, interval_s=5.0)
    plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
    r = replay_jobs(jobs, setup, WorkerSpec("default", 0, 20, engine(high=20)), plan)
    assert r.decisions["recurring"] >= 4
    for h in range(1, 4):
        assert max(r.age[h * 60 : h * 60 + 3]) > 120.0
        assert r.instances[h * 60 + 59] == 0  # none kept between bursts
    for h in range(5, 9):
        assert r.instances[h * 60 - 1] == 3  # started in the minute before
        assert max(r.age[h * 60 : h * 60 + 3]) <= 50.0  # drained within the boot (and a tick)
    assert r.max_instances <= 6


@pytest.mark.parametrize("boot", [45.0, 5.0])
def test_short_jobs_ending_between_ticks_keep_a_worker_whose_boot_exceeds_the_band(
    boot: float,
) -> None:
    # a 1 s job every 40 s, each due and done between two 5 s ticks: no tick sees it due or
    # running, only the jobs that ended since the last (``finished``)
    jobs = trace([(101.0 + 40.0 * k, 1.0) for k in range(60)])
    runs = {}
    for finished in (True, False):
        setup = WorkerSetup(concurrency=1, boot_s=boot, interval_s=5.0, finished=finished)
        plan = oracle_plan(jobs, setup, ticks_for(jobs, setup))
        runs[finished] = replay_jobs(jobs, setup, WorkerSpec("default", 0, 10, engine()), plan)
    told, blind = runs[True], runs[False]
    if boot > 10.0:  # a cold start (45 s) would queue the next job above UP_THRESHOLD (10 s)
        assert told.decisions.get("scale_from_zero") == 1  # the first job only
        assert told.p95_wait_s == 0.0 < blind.p95_wait_s  # the first job waits its boot
        assert blind.decisions["scale_from_zero"] > 10
        assert told.decisions.get("idle") == 1  # after the last job
    else:  # a 5 s cold start stays inside the band: to zero between jobs, as without
        assert told.decisions == blind.decisions
        assert told.instance_hours == blind.instance_hours
