"""What a newcomer reads: the quick start's 90 seconds (``autoscaler run`` with nothing
configured, on the built-in simulated app) print at most 40 lines at info, and each scale event
is among them (issue 12 item 4). Driven on a fake clock: the same ticks, without the wait."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping

from autoscaler import logs
from autoscaler.cli import SIM_BANNER, summary_every
from autoscaler.clock import FakeClock
from autoscaler.config import load
from autoscaler.loop import Autoscaler
from autoscaler.platforms.sim import SimPlatform
from autoscaler.sim.live import LiveApp
from autoscaler.sources.sim import SimSource

#: lines ``autoscaler run`` prints around the ticks: the banner, and on Ctrl-C ``shutdown`` and
#: ``stopped``
AROUND = 3


def test_the_quick_starts_90_seconds_print_at_most_40_lines_with_every_scale_event() -> None:
    settings = load({})
    assert settings.glob.platform == "sim"
    g = settings.glob
    clock = FakeClock()
    app = LiveApp(settings, clock)
    platform = SimPlatform(app, g.sim_speed)
    sent: list[tuple[str, int, int]] = []
    scale = platform.scale

    def recording(targets: Mapping[str, int], expected: Mapping[str, int]) -> None:
        scale(targets, expected)
        sent.extend((p, expected[p], q) for p, q in targets.items())

    platform.scale = recording  # type: ignore[method-assign]
    sources = {name: SimSource(app, p) for name, p in settings.processes.items()}
    out = io.StringIO()
    logs.configure("logfmt", "info", stream=out)
    log = logs.get()
    log.info("startup", detail=SIM_BANNER.format(speed=g.sim_speed))
    scaler = Autoscaler(
        settings, platform, sources, clock, log=log, summary_every=summary_every(settings)
    )
    for _ in range(int(90 * g.sim_speed / g.interval)):  # 90 s at the simulated speed
        scaler.tick()
        clock.advance(g.interval)
    scaler.close()
    lines = out.getvalue().splitlines()
    assert len(lines) - 1 + AROUND <= 40, "\n".join(lines)
    ups = {(p, a, b) for p, a, b in sent if b > a}
    assert ups and any(b < a for _, a, b in sent)  # it shows a scale-up and a scale-down
    logged = [
        line for line in lines if line.startswith("event=decision") and "outcome=written" in line
    ]
    assert len(logged) == len(sent)
    for (process, current, desired), line in zip(sent, logged, strict=True):
        assert f"process={process} " in line
        assert f"current={current} desired={desired}" in line


def test_third_party_loggers_go_through_the_same_renderer() -> None:
    out = io.StringIO()
    logs.configure("logfmt", "info", stream=out)
    logging.getLogger("apscheduler.executors.default").info("Running job tick")  # per tick
    for late in (1, 2, 3):  # the same warning on every overrun: shown once
        logging.getLogger("apscheduler.scheduler").warning(
            f"Run time of job tick was missed by {late}s"
        )
    logging.getLogger("httpx").info("HTTP Request: GET https://api.heroku.com/ 200")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('event="Run time of job tick was missed by 1s"')
    assert "level=warning" in lines[0] and "logger=apscheduler.scheduler" in lines[0]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_console_format_in_colour_by_default() -> None:
    out = Tty()
    logs.configure("auto", "info", stream=out)
    logs.get().info("decision", process="web")
    assert "\x1b[" in out.getvalue() and "event=" not in out.getvalue()
    pipe = io.StringIO()
    logs.configure("auto", "info", stream=pipe)
    logs.get().info("decision", process="web")
    assert pipe.getvalue().startswith("event=decision process=web")
