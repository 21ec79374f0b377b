"""The ``sim`` source: queue times of the built-in simulated app (``autoscaler.sim.live``).

A web process reads the configured aggregate (``AGGREGATE``, default p95) of the queue times of
the requests that started in the last ``WINDOW`` simulated seconds; a worker process
(``metric`` job latency) reads the age of its oldest waiting job, its depth and busy count.
"""

from __future__ import annotations

from autoscaler.configkit import DaemonConfig, NoSettings, ProcessConfig, SourceAdapter
from autoscaler.model import Metric, Reading
from autoscaler.ports import SourceError
from autoscaler.sim.live import LiveApp, shared_app


class SimSource:
    def __init__(self, app: LiveApp, process: ProcessConfig) -> None:
        self.app = app
        self.process = process.name
        self.metric: Metric = process.metric

    def sample(self, now: float) -> Reading:
        """``now`` (wall clock) is ignored: the app runs on the shared simulated clock."""
        try:
            return self.app.reading(self.process)
        except KeyError as exc:
            raise SourceError(str(exc.args[0])) from None

    def check(self) -> str:
        reading = self.sample(0.0)
        value = "no requests yet" if reading.value_ms is None else f"{reading.value_ms:.0f} ms"
        return f"built-in simulated app, {self.process} {self.metric.value}: {value}"

    def close(self) -> None:
        """Nothing to release (the app is shared with the platform)."""


def build(config: DaemonConfig, process: ProcessConfig, own: NoSettings | None = None) -> SimSource:
    return SimSource(shared_app(config), process)


ADAPTER = SourceAdapter(NoSettings, build, None)
