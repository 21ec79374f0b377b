"""A platform wrapper for ``AUTOSCALER_DRY_RUN``: reads pass through, writes are logged and kept
in a journal, never sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autoscaler import logs
from autoscaler.model import Formation
from autoscaler.ports import Platform


class DryRunPlatform:
    def __init__(self, inner: Platform, log: Any = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.journal: list[dict[str, int]] = []
        self.log = log or logs.get()

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        return self.inner.read(processes)

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        self.journal.append(dict(targets))
        self.log.info("dry_run_write_not_sent", **dict(targets))

    def check(self, processes: Sequence[str]) -> str:
        return self.inner.check(processes) + " (dry run: writes are not sent)"

    def close(self) -> None:
        self.inner.close()
