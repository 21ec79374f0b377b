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

Leaves out: network latency to a remote Redis or browser, the daemon's other threads, and a
slower machine's browser (Chromium here draws on the CPU, without a GPU).

    .venv/bin/python benchmarks/bench_history.py [--runs 7] [--skip-size] [--skip-browser]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import threading
import time
from socketserver import ThreadingMixIn
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-size", action="store_true", help="leave out the size")
    parser.add_argument("--skip-browser", action="store_true", help="leave out the page load")
    args = parser.parse_args()
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
