"""The learned boot time: how long the policy's own upscales take to serve.

Where the platform reports which instances serve (``Observation.ready``), each upscale the
policy makes is timed: from the tick it asked for more instances to the first tick on which
as many serve as run. That time is a *reading* of the boot time (to within one tick). The
timing is dropped, with no reading, when:

- the formation is no longer what the policy last set (someone else changed it: their change
  was not timed from when it was asked; or the change was not applied: a dry run, a follower,
  a write that failed);
- the policy scales down (fewer instances can serve as many as run at once: no boot);
- the platform stops saying which instances serve;
- nothing has caught up after ``BOOT_MAX`` (a crash loop or a quota is no boot time: the
  ``PROVISION_TIMEOUT`` hold is there for it).

A new upscale restarts the timing (the newest instances are the last to serve).

The estimate is the second highest of the last ``BOOT_READINGS`` readings once there are
``BOOT_ROBUST_FROM`` of them, else the highest (one slow boot does not set it alone; a boot
that has become slower counts after two readings), within ``BOOT_MIN``..``BOOT_MAX``. Until a
boot has been read (or where the platform never reports ``ready``), ``BOOT_DEFAULT``.

Which of ``UP_COOLDOWN``'s roles use it when ``UP_COOLDOWN`` is ``auto``: ``cooldown``,
``settle``, ``drain`` and ``idle`` below, and ``docs/policy.md``. Pure functions.
"""

from __future__ import annotations

from autoscaler.policy.config import PolicyConfig
from autoscaler.policy.state import PolicyState

#: the boot time assumed until one has been read (s)
BOOT_DEFAULT = 60.0
#: the learned boot time is kept within these (s): a reading is one tick coarse, and an
#: upscale that has not served after ``BOOT_MAX`` is dropped, not read
BOOT_MIN = 5.0
BOOT_MAX = 600.0
#: the readings kept (the most recent)
BOOT_READINGS = 8
#: from this many readings on, the second highest is the estimate (else the highest)
BOOT_ROBUST_FROM = 4

Boots = tuple[float, ...]


def timing(
    boot_at: float | None, known: int | None, current: int, ready: int | None, t: float
) -> tuple[float | None, float | None]:
    """The timing of an upscale asked at ``boot_at`` after a tick at ``t`` that shows ``current``
    instances, ``ready`` of them serving, when the policy last set ``known``: ``(boot_at
    still timing or None, the reading this tick or None)``."""
    if boot_at is None:
        return None, None
    if ready is None or known is None or current != known or t - boot_at > BOOT_MAX:
        return None, None
    if ready >= current:
        return None, t - boot_at
    return boot_at, None


def push(boots: Boots, reading: float) -> Boots:
    """The readings with ``reading`` added, the oldest dropped past ``BOOT_READINGS``."""
    out = (*boots, reading)
    return out[-BOOT_READINGS:]


def estimate(boots: Boots) -> float | None:
    """The boot time the readings say (``None`` with none): the highest, or the second highest
    from ``BOOT_ROBUST_FROM`` readings on, within ``BOOT_MIN``..``BOOT_MAX``."""
    if not boots:
        return None
    ordered = sorted(boots)
    value = ordered[-2] if len(ordered) >= BOOT_ROBUST_FROM else ordered[-1]
    return min(max(value, BOOT_MIN), BOOT_MAX)


def learned(cfg: PolicyConfig, st: PolicyState) -> float:
    """``UP_COOLDOWN`` as set; with ``auto``, the learned boot time, ``BOOT_DEFAULT`` until one
    is read."""
    if cfg.up_cooldown is not None:
        return cfg.up_cooldown
    boot = st.boot
    return BOOT_DEFAULT if boot is None else boot


def unlearned(cfg: PolicyConfig) -> float:
    """``UP_COOLDOWN`` as set; with ``auto``, ``BOOT_DEFAULT`` whatever has been learned."""
    return BOOT_DEFAULT if cfg.up_cooldown is None else cfg.up_cooldown


# ``UP_COOLDOWN``'s roles: which value each takes with ``auto`` (``docs/policy.md`` says why,
# with the grids' figures); an ``UP_COOLDOWN`` set is every role's value


def cooldown(cfg: PolicyConfig, st: PolicyState) -> float:
    """No further upscale this long after one (its instances boot): the learned boot time; for
    a web process at most ``BOOT_DEFAULT`` (a rise of the load during a long boot is answered
    before the boot ends: the forecast and the load-sized upscale count booting instances)."""
    value = cfg.up_cooldown
    if value is not None:
        return value
    value = st.boot  # learned, inline: read every tick
    if value is None or (value > BOOT_DEFAULT and not cfg.scale_from_zero):
        return BOOT_DEFAULT
    return value


def settle(cfg: PolicyConfig, st: PolicyState) -> float:
    """A changed formation teaches capacity (a worker: its slots) only this long (plus
    ``WINDOW``) after the change: not the boot time (where a boot is learned, the platform says
    which instances serve and readings are per serving instance), ``BOOT_DEFAULT``. A constant
    of the settings: ``PolicyConfig.settle_s`` holds it plus ``WINDOW`` for the hot path."""
    return unlearned(cfg)


def drain(cfg: PolicyConfig, st: PolicyState) -> float:
    """An upscale sized to the load drains the backlog within this long (``WINDOW`` at least):
    the cooldown, until which no further upscale comes."""
    return cooldown(cfg, st)


def idle(cfg: PolicyConfig, st: PolicyState) -> float:
    """A worker with nothing due or running this long goes to ``MIN``: the learned boot time
    (an idle instance kept a boot costs what a cold start costs: the rent-or-buy bound)."""
    return learned(cfg, st)
