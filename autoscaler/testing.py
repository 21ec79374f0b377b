"""Hand-written fakes for tests (ours and yours): a platform with a call journal and scriptable
faults, and a source that returns scripted readings or raises."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from autoscaler.model import Formation, Metric, Reading
from autoscaler.ports import PlatformError, SourceError


@dataclass
class FakePlatform:
    """An in-memory formation. ``journal`` records every write; ``fail_reads``/``fail_writes``
    hold exceptions raised (one per call, first in first out) before the call takes effect;
    ``broken`` maps a process to the error every read that includes it raises (a process the
    platform refuses to report, such as a Render service with its own autoscaling on)."""

    quantities: dict[str, int]
    name: str = "fake"
    journal: list[dict[str, int]] = field(default_factory=list)
    reads: int = 0
    fail_reads: deque[PlatformError] = field(default_factory=deque)
    fail_writes: deque[PlatformError] = field(default_factory=deque)
    broken: dict[str, PlatformError] = field(default_factory=dict)
    apply_failed_writes: bool = False  # a failed write that applied anyway (timeouts)
    updated_at: float | None = None
    deploying: bool = False
    ready: int | None = None
    writes_forbidden: bool = False
    closed: bool = False

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        self.reads += 1
        if self.fail_reads:
            raise self.fail_reads.popleft()
        for process in processes:
            if process in self.broken:
                raise self.broken[process]
        return {
            p: Formation(self.quantities[p], self.updated_at, self.deploying, self.ready)
            for p in processes
            if p in self.quantities
        }

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        if self.writes_forbidden:
            raise AssertionError(f"this fake platform must not be written to: {dict(targets)}")
        if self.fail_writes:
            exc = self.fail_writes.popleft()
            if self.apply_failed_writes:
                self.quantities.update(targets)
            raise exc
        self.journal.append(dict(targets))
        self.quantities.update(targets)

    def check(self, processes: Sequence[str]) -> str:
        return f"fake platform with {', '.join(processes)}"

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeSource:
    """Returns ``value_ms`` (or what ``script`` returns for the call number), or raises."""

    value_ms: float | None = 0.0
    metric: Metric = Metric.REQUEST_QUEUE_TIME
    samples: int = 100
    age_s: float | None = 0.0
    depth: int | None = None
    busy: int | None = None
    rate_per_s: float | None = None
    finished: int | None = None
    error: str | None = None
    script: Callable[[int], float | None] | None = None
    calls: int = 0
    closed: bool = False

    def sample(self, now: float) -> Reading:
        self.calls += 1
        if self.error is not None:
            raise SourceError(self.error)
        value = self.script(self.calls) if self.script is not None else self.value_ms
        return Reading(
            self.metric,
            value,
            samples=self.samples,
            age_s=self.age_s,
            depth=self.depth,
            busy=self.busy,
            rate_per_s=self.rate_per_s,
            finished=self.finished,
        )

    def check(self) -> str:
        if self.error is not None:
            raise SourceError(self.error)
        return "fake source"

    def close(self) -> None:
        self.closed = True
