"""One sentence per decision, for ``autoscaler explain``."""

from __future__ import annotations

from autoscaler.config import ProcessSettings
from autoscaler.durations import format_duration, format_ms
from autoscaler.model import Decision, Metric, Reason
from autoscaler.policy import (
    PROBE_AFTER,
    SHARE_BUDGET,
    SHARE_TAU,
    TRIM_SHARE,
    UP_LIMIT,
    PolicyConfig,
    PolicyState,
    boot,
)


def cooldown(d: Decision, p: ProcessSettings, role: str = "cooldown") -> str:
    """The value of one of ``UP_COOLDOWN``'s roles (``autoscaler.policy.boot``) for the decision,
    and where it comes from."""
    if p.up_cooldown is not None:
        return f"{format_duration(p.up_cooldown)} (UP_COOLDOWN)"
    if d.boot_s is None:
        return f"{format_duration(boot.BOOT_DEFAULT)} (UP_COOLDOWN auto: no boot read yet)"
    rule = boot.idle if role == "idle" else boot.cooldown
    value = rule(PolicyConfig.from_settings(p), PolicyState(boot=d.boot_s))
    learned = format_duration(round(d.boot_s))
    if value != d.boot_s:
        return (
            f"{format_duration(value)} (UP_COOLDOWN auto: at most that; the boot learned {learned})"
        )
    return f"{learned} (UP_COOLDOWN auto: the boot time learned)"


def sentence(d: Decision, p: ProcessSettings, error: str | None = None) -> str:
    what = "queue time" if p.metric is Metric.REQUEST_QUEUE_TIME else "job latency"
    signal = f"{p.aggregate} {what} {format_ms(d.signal_ms)}"
    band = f"{format_ms(p.down_threshold_ms)}..{format_ms(p.up_threshold_ms)}"
    r = d.reason
    delay = f"the {format_duration(p.down_delay)} down delay"
    why = {
        Reason.ABOVE_BAND: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}; sized by "
            + ("UP_STEP" if p.up_step else "the overload (at most doubling)")
        ),
        Reason.UP_TO_LOAD: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}; {d.desired} instances carry the "
            "rate requests arrive at (with the queue time rising, above the rate they start at) "
            "and drain the backlog within UP_COOLDOWN at what one instance is learned to carry "
            f"(at most {UP_LIMIT} times the current per step)"
        ),
        Reason.EARLY: (
            "the requests in service are near what the instances serve at once before queue "
            f"time rises (learned): {d.desired} instances keep them below it; {signal} now"
        ),
        Reason.DOWN_TO_LOAD: (
            f"{signal} has stayed below {format_ms(p.down_threshold_ms)} for {delay}, and the "
            f"request rate to expect needs {d.desired} (the most it needed over that delay)"
        ),
        Reason.DOWN_IN_BAND: (
            f"{signal} is in the lower half of {band}, fewer than "
            f"{100 * TRIM_SHARE * SHARE_BUDGET:g}% of the readings of the last "
            f"{format_duration(SHARE_TAU)} were above it (bursts aside), and the request rate "
            f"to expect needs {d.desired} (the most it needed over DOWN_DELAY)"
        ),
        Reason.SCALE_FROM_ZERO: "jobs are waiting and no worker is running",
        Reason.UP_TO_JOBS: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}; {d.desired} instances run every "
            "due and running job at once (at what one instance was seen to run)"
        ),
        Reason.RECURRING: (
            "bursts of jobs have come at equal intervals (learned): the next is due within a "
            f"boot time or the last one drains, and {d.desired} instances run the most work one "
            f"of them brought within {cooldown(d, p)}"
        ),
        Reason.DOWN_TO_JOBS: (
            f"{signal} has stayed below {format_ms(p.down_threshold_ms)} for {delay}, no job is "
            f"running, and the jobs of that delay needed at most {d.desired} instances"
        ),
        Reason.IDLE_INSTANCES: (
            f"{signal} has stayed below {format_ms(p.down_threshold_ms)} for "
            f"{cooldown(d, p, 'idle')}, no job is running, and the jobs of that time needed at "
            f"most {d.desired} instances: one unneeded for a boot time costs what a cold start "
            f"does, and a boot this short keeps the wait within {format_ms(p.up_threshold_ms)}"
        ),
        Reason.IDLE: (
            f"no job has been due or running for {cooldown(d, p, 'idle')}: an idle instance kept "
            "about a boot time costs what a cold start does"
        ),
        Reason.BURST_OVER: (
            "a burst of jobs on the schedule learned is over (none of its jobs is due, none is "
            "due or running now): its instances but one go without the idle wait, as the next "
            "one is an interval away and its instances are started ahead of it"
        ),
        Reason.JOBS_ENDED: (
            "no job was due or running when read, but jobs ended between readings within "
            f"{cooldown(d, p, 'idle')}: the worker is not idle, and a cold start would let the "
            f"next job wait about a boot time, longer than {format_ms(p.up_threshold_ms)}"
            " (UP_THRESHOLD): one instance is kept"
        ),
        Reason.FORECAST: (
            f"the request rate to expect (its recent mean plus up to {p.headroom:g} standard "
            f"deviations, as the app's recent record above the band asks) needs {d.desired} "
            f"instances; {signal} now"
        ),
        Reason.PROBE: (
            f"{signal} has stayed below {format_ms(p.down_threshold_ms)} for "
            f"{format_duration(PROBE_AFTER)} while the forecast held {d.current}: trying fewer, "
            "each carrying more than learned so far"
        ),
        Reason.BELOW_BAND: (
            f"{signal} has stayed below {format_ms(p.down_threshold_ms)} for {delay}: down by "
            "DOWN_STEP"
        ),
        Reason.IN_BAND: f"{signal} is inside {band}",
        Reason.UP_SENSITIVITY: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}, "
            f"but not yet for {format_duration(p.up_sensitivity)}"
        ),
        Reason.UP_COOLDOWN: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}, but the last upscale was less "
            f"than {cooldown(d, p)} ago and its instances may still be booting"
        ),
        Reason.DRAINING: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}, but the jobs drain: the due and "
            "running ones fell since the last reading fast enough to start the due ones before "
            f"an added instance would serve ({cooldown(d, p, 'idle')}), or more instances serve "
            "than at the last reading (their pace is read first)"
        ),
        Reason.AT_MAX: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}, but {d.high} is the most"
        ),
        Reason.DOWN_DELAY: (
            f"{signal} is below {format_ms(p.down_threshold_ms)}, waiting out {delay}"
        ),
        Reason.AT_MIN: (
            f"{signal} is below {format_ms(p.down_threshold_ms)}, but {d.low} is the least"
        ),
        Reason.BUSY: (
            "the signal is low, but jobs are running: a downscale could stop one before it ends"
        ),
        Reason.NOT_READY: (
            f"{signal} is above {format_ms(p.up_threshold_ms)}, but instances added more than "
            f"{format_duration(p.provision_timeout)} ago still do not serve: adding more would not"
            " help (crash loop or quota?)"
        ),
        Reason.HEADROOM: (
            f"{signal} is below {format_ms(p.down_threshold_ms)}, but fewer instances would not "
            + (
                "carry the request rate to expect (the forecast) with room to spare, or fewer"
                " just overloaded at this load right after a downscale"
                if p.metric is Metric.REQUEST_QUEUE_TIME
                else f"have run the jobs of {delay} at once"
            )
        ),
        Reason.SIGNAL_MISSING: "no signal: the reporters are silent, so nothing is scaled down",
        Reason.SIGNAL_STALE: "the signal is stale, so nothing is scaled down",
        Reason.SIGNAL_FAILED: f"the source failed ({error or 'unknown error'}), holding",
        Reason.RAISED_TO_MIN: f"{d.current} is below the least allowed now ({d.low})",
        Reason.LOWERED_TO_MAX: f"{d.current} is above the most allowed now ({d.high})",
        Reason.DISABLED_MANUAL_ZERO: "it was set to 0 by hand; hands off until it is started again",
    }[r]
    if d.action.value == "hold":
        head = f"{d.process}: hold at {d.current}"
    else:
        head = f"{d.process}: {d.action.value} from {d.current} to {d.desired}"
    extra = " (a quantity set by someone else was adopted)" if d.adopted else ""
    return f"{head} ({why}){extra}"
