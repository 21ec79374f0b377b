"""The policy engine: a pure function from (config, state, observation, now) to a decision.

A short ladder of named steps (``ladder``; a job process's own steps in ``jobs``), beside it
the pure pieces it calls: the capacity model (``capacity``), the arrival rate's mean and
spread (``load``), the sizing of upscales and downscales (``sizing``), and what is learned
kept across restarts (``snapshot``). The
daemon, ``simulate`` and ``tune`` all call ``decide``, so what the simulator shows is what the
daemon does. ``docs/policy.md`` describes the rules.
"""

from autoscaler.policy.capacity import (
    BIN_MEMORY,
    BIN_READINGS,
    LEARN_FROM,
    LEARN_SAMPLES,
    estimate,
    learn,
)
from autoscaler.policy.config import DEFAULT_DOWN_DELAY, PolicyConfig
from autoscaler.policy.ladder import PROBE_AFTER, PROBE_HOLD, TRIM_SHARE, decide
from autoscaler.policy.load import RATE_TAU, SHARE_BUDGET, SHARE_TAU
from autoscaler.policy.sizing import UP_LIMIT, auto_step
from autoscaler.policy.snapshot import learned
from autoscaler.policy.state import PolicyState, initial_state

__all__ = [
    "BIN_MEMORY",
    "BIN_READINGS",
    "DEFAULT_DOWN_DELAY",
    "LEARN_FROM",
    "LEARN_SAMPLES",
    "PROBE_AFTER",
    "PROBE_HOLD",
    "RATE_TAU",
    "SHARE_BUDGET",
    "SHARE_TAU",
    "TRIM_SHARE",
    "UP_LIMIT",
    "PolicyConfig",
    "PolicyState",
    "auto_step",
    "decide",
    "estimate",
    "initial_state",
    "learn",
    "learned",
]
