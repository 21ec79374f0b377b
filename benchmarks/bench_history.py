"""History size and dashboard load time, against the machine's real Redis (database 12).

- Size: 14 days of one process recorded tick by tick (5 s ticks, as the daemon does) through the
  Recorder into the Redis store; Redis's own MEMORY USAGE of every key, per process per day.
- Load: the dashboard's two API calls for 14 days of 5 processes (what the page fetches at the
  14 d range), served by the WSGI app from the Redis store: median and spread of several runs,
  and apart the first (the store parses each day once, then only what was appended).
- Page: the whole page load in a headless Chromium (Debian's, driven by Playwright as the page
  tests do), 14 days of 5 processes at the 14 d range, served over loopback by the WSGI app from
  the Redis store: from the navigation's start to the frame after the last chart was drawn
  (``performance.now()`` two animation frames after the page says it is loaded), a fresh
  browser context (no cache) per run.

- Round trip (``--round-trip SEED ...``): a week of the daemon on the built-in simulated app
  (100 ms requests, 4 slots, 20 s boot), in-process on a fake clock, per seed; its history
  exported, the app fitted, and replayed by ``autoscaler simulate`` (the fast model) with the
  fit: the instance-hours the daemon ran against the replay's; and the weekly digest's tune
  search on that week (``owntraffic.tune_verdict``, 12 settings, one process): its wall and CPU
  seconds.
- Diagnosis (``--diagnose SEED ...``): the same week and replay with ``decide`` watched on both
  sides (the daemon's loop and the simulator's engine policy call the same function): the
  upscales by reason, when what one instance carries (``capacity``) became sure and what it and
  the early signal's limit (``slots``) ended at, and the readings the capacity model learned
  above the up threshold, with how many of them came on a tick whose arrival rate had risen
  more than 5% since the tick before (a burst's onset: the window's mean rate still lags the
  load that queued the requests; the policy now leaves such overloads out of what it learns).

Leaves out: network latency to a remote Redis or browser, the daemon's other threads, and a
slower machine's browser (Chromium here draws on the CPU, without a GPU).

    .venv/bin/python benchmarks/bench_history.py [--runs 7] [--skip-size] [--skip-browser]
    .venv/bin/python benchmarks/bench_history.py --round-trip 7 1 3
    .venv/bin/python benchmarks/bench_history.py --diagnose 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis

from autoscaler.dashboard import DashboardApp
from autoscaler.history import Recorder, TickFacts, seed
from autoscaler.stores.redis import RedisStore

URL = "redis://127.0.0.1:6379/12"


def size_per_day(client: redis.Redis) -> float:
    client.flushdb()
    store = RedisStore(client, "bench:size")
    rec = Recorder(store)
    t0 = (int(time.time()) // 86400 - 14) * 86400
    for i in range(14 * 86400 // 5):
        q = 2 + (i // 720) % 5
        rec.tick(
            t0 + 5 * i,
            [
                TickFacts(
                    "web",
                    20.0 + i % 97,
                    True,
                    q,
                    q,
                    31.7 + i % 13,
                    4.2,
                    i % 720 == 0,
                    "up",
                    "above_band",
                    q + 1,
                )
            ],
        )
    rec.flush()
    used = sum(int(client.memory_usage(k) or 0) for k in client.keys("bench:size:*"))
    return used / 14


def load_times(client: redis.Redis, runs: int) -> list[float]:
    client.flushdb()
    store = RedisStore(client, "bench:load")
    processes = ["web", "worker", "urgent", "mailer", "reports"]
    seed(store, processes, days=14, end=time.time())
    app = DashboardApp(store, token=None)
    out = []
    for _ in range(runs + 1):  # the first, cold (the store has parsed nothing yet), told apart
        started = time.perf_counter()
        status, _, _ = app.handle("GET", "/api/processes", "", {})
        assert status == 200
        for p in processes:
            status, _, body = app.handle("GET", "/api/history", f"process={p}&range=14d", {})
            assert status == 200 and len(body) > 1000
        out.append(time.perf_counter() - started)
    return out


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


#: records, two animation frames after the page says it is loaded, the time since navigation
_DRAWN = """
new MutationObserver((_, obs) => {
  if (document.body && document.body.getAttribute("data-loaded")) {
    obs.disconnect();
    requestAnimationFrame(() => requestAnimationFrame(() => {
      window.__drawnMs = performance.now();
    }));
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-loaded"]});
"""


def page_times(client: redis.Redis, runs: int, chromium: str) -> list[float]:
    """Seconds from navigation to the frame after the 14 d page of 5 processes was drawn: the
    first load (the server has parsed nothing yet, as when ``autoscaler dashboard`` has just
    started), then ``runs`` more."""
    from playwright.sync_api import sync_playwright

    client.flushdb()
    store = RedisStore(client, "bench:page")
    processes = ["web", "worker", "urgent", "mailer", "reports"]
    seed(store, processes, days=14, end=time.time())
    app = DashboardApp(store, token=None)
    httpd = make_server("127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/?range=14d"
    out = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            for _ in range(runs + 1):  # the first, cold (nothing parsed yet), is told apart
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.add_init_script(_DRAWN)
                page.goto(url)
                page.wait_for_function("window.__drawnMs !== undefined", timeout=60_000)
                assert page.get_attribute("body", "data-loaded") == "true"
                assert page.locator("canvas").count() >= 15  # three charts per process
                out.append(float(page.evaluate("window.__drawnMs")) / 1000.0)
                context.close()
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return out


def _spread(times: list[float], runs: int) -> str:
    return (
        f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f} ({runs} runs; load average {os.getloadavg()[0]:.2f})"
    )


def _week(seed_value: int, *extra: str) -> tuple[Any, Any, float, Any, float]:
    """A week of the daemon on the sim app, its fit, and the default policy's instance-hours
    replayed by ``simulate`` with that fit (``extra``: more ``simulate`` flags)."""
    import contextlib
    import io
    import json
    import tempfile

    from autoscaler.cli import main as cli
    from autoscaler.sim.owntraffic import fit, record_simulated, trace_csv

    rows, events, ran = record_simulated(7.0, {"AUTOSCALER_SIM_SEED": str(seed_value)})
    f = fit(rows, events, (50.0, 200.0))
    service, slots, boot = f.service_ms or 100.0, f.concurrency or 4, f.boot_s or 45.0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "web.csv")
        with open(path, "w", encoding="utf-8") as out:
            out.write(trace_csv(rows)[0])
        os.environ["AUTOSCALER_PROCESSES"] = "web"
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            cli(
                [
                    *("simulate", "--trace", path, "--service-ms", f"{service:g}"),
                    *("--concurrency", str(slots), "--boot", f"{boot:g}", "--json", *extra),
                ]
            )
    replayed = next(r for r in json.loads(buf.getvalue()) if r["policy"] == "default")
    return rows, events, ran, f, float(replayed["instance_hours"])


def round_trip(seed_value: int) -> str:
    """One seed's week: what the daemon ran, the fit, and what ``simulate`` replays."""

    from autoscaler.config import load
    from autoscaler.sim.owntraffic import tune_verdict

    rows, events, ran, f, hours = _week(seed_value)
    service, slots, boot = f.service_ms or 100.0, f.concurrency or 4, f.boot_s or 45.0
    started, cpu = time.perf_counter(), time.process_time()
    verdict = tune_verdict(rows, events, load({"AUTOSCALER_PROCESSES": "web"}), "web")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return (
        f"seed {seed_value}: fit {service:.1f} ms, {slots} slots, boot {boot:.0f} s; the daemon "
        f"ran {ran:.1f} instance-hours, the replay {hours:.1f} ({hours / ran - 1:+.1%})\n"
        f"  digest's tune search: {wall:.1f} s wall, {cpu:.1f} s CPU (load average "
        f"{os.getloadavg()[0]:.2f}): {verdict}"
    )


class _Watch:
    """Wraps ``decide`` where a module imported it, and keeps a summary of every call."""

    def __init__(self) -> None:
        self.ticks = 0
        self.ups: dict[str, int] = {}
        self.sure_at: float | None = None
        self.capacity: float | None = None
        self.slots: float | None = None
        self.slots_known = 0
        self.over = 0  # readings learned above the up threshold
        self.over_rising = 0  # ... of them on a tick whose rate rose > 5% since the last
        self.over_loads: list[float] = []
        self._rate: float | None = None

    def wrap(self, decide: Any) -> Any:
        def watched(cfg: Any, st: Any, obs: Any, now: Any) -> Any:
            decision, new = decide(cfg, st, obs, now)
            self.ticks += 1
            if decision.desired > obs.current:
                reason = str(decision.reason)
                self.ups[reason] = self.ups.get(reason, 0) + 1
            if new.sure and self.sure_at is None:
                self.sure_at = now.mono
            self.capacity, self.slots = new.capacity, new.slots
            self.slots_known += new.slots is not None
            rate, before = obs.rate_per_s, self._rate
            if new.bins is not st.bins and obs.signal_ms > cfg.up_ms:
                self.over += 1
                serving = obs.ready if obs.ready is not None else obs.current
                self.over_loads.append(rate / max(1, serving))
                self.over_rising += bool(before and rate > 1.05 * before)
            self._rate = rate
            return decision, new

        return watched

    def describe(self, start: float) -> str:
        ups = ", ".join(f"{k} {v}" for k, v in sorted(self.ups.items()))
        sure = "never" if self.sure_at is None else f"after {(self.sure_at - start) / 3600:.1f} h"
        loads = statistics.median(self.over_loads) if self.over_loads else float("nan")
        cap = "unknown" if self.capacity is None else f"{self.capacity:.1f} requests/s"
        slots = "unknown" if self.slots is None else f"{self.slots:.2f}"
        return (
            f"upscales by reason: {ups}; capacity sure {sure}, ends at {cap}; slots end at "
            f"{slots} (known on {self.slots_known / max(1, self.ticks):.0%} of ticks); "
            f"{self.over} readings learned above the band (median load {loads:.1f} requests/s "
            f"per instance), {self.over_rising} of them on a rising rate"
        )


def diagnose(seed_value: int) -> str:
    """One seed's week and replay with ``decide`` watched on both sides."""

    import autoscaler.loop
    import autoscaler.sim.baselines

    daemon, replay = _Watch(), _Watch()
    modules = autoscaler.loop, autoscaler.sim.baselines
    saved = [getattr(m, "decide") for m in modules]  # noqa: B009 (not exported: patched)
    for m, watch, decide in zip(modules, (daemon, replay), saved, strict=True):
        setattr(m, "decide", watch.wrap(decide))  # noqa: B010
    try:
        rows, _events, ran, _fit, hours = _week(seed_value, "--jobs", "1")
    finally:
        for m, decide in zip(modules, saved, strict=True):
            setattr(m, "decide", decide)  # noqa: B010
    over = sum(1 for m in rows if m.p50 is not None and m.p50 > 200.0)
    return (
        f"seed {seed_value}: the daemon ran {ran:.1f} instance-hours with {over} of "
        f"{len(rows)} minutes' median signal over 200 ms, the replay {hours:.1f} "
        f"({hours / ran - 1:+.1%})\n  daemon: {daemon.describe(1000.0)}\n"
        f"  replay: {replay.describe(0.0)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-size", action="store_true", help="leave out the size")
    parser.add_argument("--skip-browser", action="store_true", help="leave out the page load")
    parser.add_argument("--round-trip", type=int, nargs="+", metavar="SEED", help="only that")
    parser.add_argument("--diagnose", type=int, nargs="+", metavar="SEED", help="only that")
    args = parser.parse_args()
    if args.diagnose:
        for seed_value in args.diagnose:
            print(diagnose(seed_value), flush=True)
        return
    if args.round_trip:
        for seed_value in args.round_trip:
            print(round_trip(seed_value), flush=True)
        return
    client = redis.Redis.from_url(URL)
    try:
        if not args.skip_size:
            per_day = size_per_day(client)
            print(f"history in Redis: {per_day:,.0f} bytes per process per day (14 d, 5 s ticks)")
        first, *times = load_times(client, args.runs)
        print(f"dashboard API, 14 days of 5 processes: {_spread(times, args.runs)}")
        print(f"  the first (nothing parsed yet): {first * 1000:.0f} ms")
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if args.skip_browser:
            pass
        elif chromium is None:
            print("page load: Chromium is not installed (apt-get install -y chromium)")
        else:
            first, *times = page_times(client, args.runs, chromium)
            print(f"page load in Chromium, 14 days of 5 processes: {_spread(times, args.runs)}")
            print(f"  the first load (nothing parsed yet): {first * 1000:.0f} ms")
    finally:
        client.flushdb()


if __name__ == "__main__":
    main()
