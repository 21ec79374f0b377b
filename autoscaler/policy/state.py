"""What ``decide`` remembers between ticks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoscaler.model import Instant, Reason

if TYPE_CHECKING:
    from autoscaler.policy.config import PolicyConfig

#: a stabilisation window: (time, recommended quantity, sized by the load) entries whose
#: quantities fall from the oldest to the newest, so that the first is the window's highest
Window = tuple[tuple[float, int, bool], ...]
#: per bin of load per instance (bin k holds loads from 1.05**k to 1.05**(k+1)): the mean
#: signal of its recent readings and how many it has had
Bins = dict[int, tuple[float, int]]
#: a job process's bursts: (time, the instances its jobs needed, the slot-seconds they ran
#: until none was due, whether jobs of it are still due)
Bursts = tuple[tuple[float, int, float, bool], ...]
#: a job process's jobs as last read: (time, due and running jobs, instances serving where the
#: platform says, how fast the due and running jobs fell since the reading before (jobs/s;
#: negative: they rose), whether more instances serve than then)
Dues = tuple[float, int, int | None, float, bool]


class PolicyState:
    """Immutable by convention: ``decide`` returns a new one. Times are monotonic seconds;
    ``None`` means never / not currently / unknown."""

    __slots__ = (
        "above_since",
        "arriving",
        "below_since",
        "bins",
        "boot",
        "boot_at",
        "boots",
        "bursts",
        "capacity",
        "dues",
        "ended",
        "expected",
        "known",
        "last_change",
        "last_down",
        "last_up",
        "over_share",
        "probe_at",
        "quiet",
        "rate_at",
        "rate_last",
        "rate_mean",
        "rate_since",
        "rate_var",
        "served_at",
        "short_since",
        "signal_last",
        "slot_bins",
        "slots",
        "sure",
        "too_few",
        "window",
    )

    def __init__(
        self,
        known: int | None = None,
        above_since: float | None = None,
        below_since: float | None = None,
        last_up: float | None = None,
        last_change: float | None = None,
        *,
        last_down: float | None = None,
        short_since: float | None = None,
        rate_mean: float | None = None,
        rate_var: float = 0.0,
        rate_at: float | None = None,
        rate_last: float | None = None,
        rate_since: float | None = None,
        over_share: float | None = None,
        capacity: float | None = None,
        sure: bool = False,
        bins: Bins | None = None,
        slots: float | None = None,
        slot_bins: Bins | None = None,
        probe_at: float | None = None,
        quiet: float | None = None,
        window: Window = (),
        expected: float | None = None,
        boot: float | None = None,
        boots: tuple[float, ...] = (),
        boot_at: float | None = None,
        bursts: Bursts = (),
        signal_last: float | None = None,
        served_at: float | None = None,
        dues: Dues | None = None,
        ended: float | None = None,
        too_few: tuple[float, float] | None = None,
    ) -> None:
        self.known = known  # the quantity we last saw or set
        self.above_since = above_since
        self.below_since = below_since
        self.last_up = last_up
        self.last_change = last_change
        self.last_down = last_down  # when the policy last scaled down
        # since when fewer instances serve than run (where the platform reports it)
        self.short_since = short_since
        # the arrival rate's exponentially weighted mean and variance, when they were last
        # updated and since when they have been kept
        self.rate_mean = rate_mean
        self.rate_var = rate_var
        self.rate_at = rate_at
        # the rate read on the tick of ``rate_at`` (is the load rising right now?)
        self.rate_last = rate_last
        self.rate_since = rate_since
        # the share of readings above the band, weighted over ``load.SHARE_TAU`` (counted on
        # the ticks the rate is: ``rate_at``): how much of ``HEADROOM`` is kept (``load.spare``)
        self.over_share = over_share
        # what one instance carries (requests/s): with ``sure``, the load at which the signal
        # reaches the top of the band; without, the most it has carried inside the band (a
        # floor); ``None`` until either is read (``autoscaler.policy.capacity``)
        self.capacity = capacity
        self.sure = sure
        self.bins: Bins = {} if bins is None else bins  # never changed in place
        # requests one instance serves at once when the signal reaches the top of the band
        # (the early signal's limit, from ``Observation.in_use``), and its readings; for a job
        # process, the jobs one instance runs at once (``autoscaler.policy.jobs``)
        self.slots = slots
        self.slot_bins: Bins = {} if slot_bins is None else slot_bins
        self.probe_at = probe_at  # when fewer instances were last tried despite the forecast
        # the most load per serving instance read with the signal below the band (readings as
        # capacity takes them): the instances carried that much quietly; forgotten when an
        # overload comes at that load or less (``ladder.learn``)
        self.quiet = quiet
        # the load per serving instance (requests/s) that overloaded a formation just scaled
        # down, before it settled, and when: so many instances were too few for it, whatever
        # the floor says (``ladder.TOO_FEW_FOR``)
        self.too_few = too_few
        self.window = window  # the downscale recommendations of the last ``DOWN_DELAY``
        # the arrival rate to keep capacity for, as of the last tick with a rate (derived from
        # the rate's record and ``HEADROOM``: computed once per tick)
        self.expected = expected
        # the rate requests arrive at, as of this tick, where the queue time rises (computed
        # once per tick; ``None`` elsewhere): the rate read is the rate they start at
        self.arriving: float | None = None
        # the boot time learned from the readings ``boots`` (the most recent last), and when
        # the upscale being timed was asked (``autoscaler.policy.boot``)
        self.boot = boot
        self.boots = boots
        self.boot_at = boot_at
        # a job process's recent bursts of due jobs, the most recent last
        # (``autoscaler.policy.jobs``)
        self.bursts = bursts
        # the signal read on the last tick with a trusted signal (is the queue draining?)
        self.signal_last = signal_last
        # when the last upscale timed (``boot_at``) had every instance serving
        self.served_at = served_at
        # a job process's last reading of its jobs (``Dues``, ``autoscaler.policy.jobs``)
        self.dues = dues
        # a job process's last reading that showed jobs ended since the one before
        # (``Observation.finished``; a clock, not learned: never persisted)
        self.ended = ended

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__ if "bins" not in s)
        return f"PolicyState({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicyState):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


_new = object.__new__


def evolve(
    state: PolicyState,
    above_since: float | None,
    below_since: float | None,
    short_since: float | None,
) -> PolicyState:
    """A copy of ``state`` for ``decide`` to fill (faster than the constructor's keywords), with
    the clocks of the band and of the instances serving as given (``decide`` moves them every
    tick) and no expected rate yet."""
    new: PolicyState = _new(PolicyState)
    new.known = state.known
    new.above_since = above_since
    new.below_since = below_since
    new.last_up = state.last_up
    new.last_change = state.last_change
    new.last_down = state.last_down
    new.short_since = short_since
    new.rate_mean = state.rate_mean
    new.rate_var = state.rate_var
    new.rate_at = state.rate_at
    new.rate_last = state.rate_last
    new.rate_since = state.rate_since
    new.over_share = state.over_share
    new.capacity = state.capacity
    new.sure = state.sure
    new.bins = state.bins
    new.slots = state.slots
    new.slot_bins = state.slot_bins
    new.probe_at = state.probe_at
    new.quiet = state.quiet
    new.too_few = state.too_few
    new.window = state.window
    new.expected = None
    new.arriving = None
    new.boot = state.boot
    new.boots = state.boots
    new.boot_at = state.boot_at
    new.bursts = state.bursts
    new.signal_last = state.signal_last
    new.served_at = state.served_at
    new.dues = state.dues
    new.ended = state.ended
    return new


def initial_state(updated_at: float | None, now: Instant) -> PolicyState:
    """State for a process seen for the first time (a start or a leadership handover).

    If the platform says when the formation last changed, that change counts as the last change,
    so a new leader does not scale down right after another one scaled up.
    """
    if updated_at is None or updated_at > now.wall:
        return PolicyState()
    return PolicyState(last_change=now.mono - (now.wall - updated_at))


def up_held(
    cfg: PolicyConfig, st: PolicyState, current: int, t: float, high: int, *, cooldown: float
) -> Reason | None:
    """Why an upscale from ``current`` waits this tick, or ``None`` when it may go: at ``high``,
    within ``UP_SENSITIVITY`` of the signal going above the band, within ``cooldown`` (the
    ``UP_COOLDOWN`` in force: ``boot.cooldown``) of the last upscale (its instances boot), or
    fewer instances serving than run for ``PROVISION_TIMEOUT`` (more would not help: find out
    why they never came)."""
    assert st.above_since is not None
    if current >= high:
        return Reason.AT_MAX
    if t - st.above_since < cfg.up_sensitivity:
        return Reason.UP_SENSITIVITY
    if st.last_up is not None and t - st.last_up < cooldown:
        return Reason.UP_COOLDOWN
    if not_ready(cfg, st, t):
        return Reason.NOT_READY
    return None


def not_ready(cfg: PolicyConfig, st: PolicyState, t: float) -> bool:
    """Fewer instances have served than run for ``PROVISION_TIMEOUT`` on end."""
    return st.short_since is not None and t - st.short_since >= cfg.provision_timeout
