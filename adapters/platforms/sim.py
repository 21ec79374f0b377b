"""The ``sim`` platform: the formation of the built-in simulated app (``autoscaler.sim.live``).

It shares one in-process app with the ``sim`` sources, on the accelerated clock of
``AUTOSCALER_SIM_SPEED``. A scale-up adds instances that serve only after their boot delay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoscaler.configkit import DaemonConfig, NoSettings, PlatformAdapter
from autoscaler.model import Formation
from autoscaler.ports import Conflict, PlatformError
from autoscaler.sim.live import LiveApp, shared_app


class SimPlatform:
    name = "sim"

    def __init__(self, app: LiveApp, speed: float) -> None:
        self.app = app
        self.speed = speed

    def read(self, processes: Sequence[str]) -> dict[str, Formation]:
        try:
            return {p: self.app.formation(p) for p in processes}
        except KeyError as exc:
            raise PlatformError(str(exc.args[0])) from None

    def scale(self, targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        for process, quantity in targets.items():
            if quantity < 0:
                raise PlatformError(f"{process}: quantity {quantity} is negative")
            try:
                current = self.app.quantity(process)
            except KeyError as exc:
                raise PlatformError(str(exc.args[0])) from None
            if process in expected and expected[process] != current:
                raise Conflict(
                    f"{process}: the simulated app has {current} instances, "
                    f"not the {expected[process]} the decision was based on"
                )
        for process, quantity in targets.items():
            self.app.scale(process, quantity)

    def check(self, processes: Sequence[str]) -> str:
        formation = self.read(processes)
        counts = ", ".join(f"{p}={f.quantity}" for p, f in formation.items())
        return f"built-in simulated app at {self.speed:g}x speed: {counts}"

    def close(self) -> None:
        """Nothing to release: the app lives as long as the process (the sources share it)."""


def parse(
    config: DaemonConfig, own: NoSettings | None = None, per: Mapping[str, NoSettings] | None = None
) -> None:
    """Nothing to check: the simulated app needs no variable of its own."""


def build(
    config: DaemonConfig, own: NoSettings | None = None, per: Mapping[str, NoSettings] | None = None
) -> SimPlatform:
    return SimPlatform(shared_app(config), config.glob.sim_speed)


ADAPTER = PlatformAdapter(NoSettings, NoSettings, parse, build, lambda own, per: "")
