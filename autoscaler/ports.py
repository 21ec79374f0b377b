"""The narrow interfaces the core uses to talk to the outside, and their typed errors.

Adapters (``adapters/``) implement these; the core never imports an adapter module directly except
through ``autoscaler.registry``. Each Protocol lists only the calls the core makes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from autoscaler.model import Formation, Metric, Reading


class AutoscalerError(Exception):
    """Base of every error the daemon expects and handles."""


class ConfigError(AutoscalerError):
    """Invalid configuration. ``problems`` maps each offending variable (or flag) to why."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"  {name}: {why}" for name, why in sorted(self.problems.items())]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


class SourceError(AutoscalerError):
    """A source could not produce a signal. The message says which queue or endpoint and why.

    Never turned into a zero: the policy holds on it.
    """


class PlatformError(AutoscalerError):
    """A platform call failed; nothing is known to have changed."""


class RateLimited(PlatformError):
    """The platform said slow down; ``retry_after`` seconds (or ``None`` if it did not say)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(PlatformError):
    """The platform refused the change (e.g. tier limit, release in progress).

    ``retryable`` tells whether the same write may succeed later without operator action.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class WriteUnknown(PlatformError):
    """A write was sent but its outcome is unknown (timeout, dropped connection after sending).

    The loop re-reads the formation before deciding again and never assumes it applied.
    """


class Conflict(PlatformError):
    """The quantity changed between our read and our write; the write was not sent."""


class StoreError(AutoscalerError):
    """The learned-state store could not be read or written; the policy learns again."""


class StateStore(Protocol):
    """Where what the policy learned is kept across restarts and leader changes (beside the
    lock: Redis or PostgreSQL). Values are the policy's JSON-serialisable snapshots per process."""

    def load(self) -> dict[str, object]:
        """The saved snapshot of each process (``{}`` when none). Raises ``StoreError``."""
        ...

    def save(self, snapshots: Mapping[str, object]) -> None:
        """Replace what is saved. Raises ``StoreError``."""
        ...

    def close(self) -> None: ...


class Source(Protocol):
    """Where a process's signal comes from."""

    metric: Metric

    def sample(self, now: float) -> Reading:
        """Poll once. ``now`` is the wall clock in epoch seconds.

        Returns a reading, or raises ``SourceError`` saying which queue failed and why.
        """
        ...

    def check(self) -> str:
        """Reach the dependency read-only; return a one-line description or raise."""
        ...

    def close(self) -> None: ...


class Platform(Protocol):
    """Where the formation lives. Quantities are always absolute."""

    name: str

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        """The formation of each named process. Raises ``PlatformError``."""
        ...

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        """Set each process in ``targets`` to that absolute quantity.

        ``expected`` is the quantity the decision was based on; an adapter that can detect that
        the platform now holds something else raises ``Conflict`` instead of overwriting it.
        Raises ``PlatformError`` subclasses; ``WriteUnknown`` when the outcome is unknown.
        """
        ...

    def check(self, processes: Sequence[str]) -> str:
        """Prove auth and read access without writing; return a one-line description."""
        ...

    def close(self) -> None: ...


class Lease(Protocol):
    """A held leadership lease."""

    @property
    def epoch(self) -> int:
        """Grows by one on every acquisition by any process; logged with every write."""
        ...


class Lock(Protocol):
    """Leader election: only the holder of a valid lease writes to the platform."""

    def acquire(self) -> Lease | None:
        """Try to become (or stay) leader without blocking; renews a held lease."""
        ...

    def valid(self, lease: Lease) -> bool:
        """True while the lease can be trusted for a write right now (checked before writes)."""
        ...

    def release(self, lease: Lease) -> None: ...

    def check(self) -> str:
        """Reach the lock backend without taking the lock; return a one-line description."""
        ...

    def close(self) -> None: ...
