"""Fixtures: the dashboard served on loopback over a seeded history, and a headless Chromium.

Chromium comes from Debian's packages (``.ci/run`` installs it when absent); Playwright drives
it through ``executable_path``. Without it the browser tests skip, saying why."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from autoscaler.dashboard import DashboardApp
from autoscaler.history import seed
from autoscaler.stores.memory import MemoryStore

TOKEN = "s3cret-dashboard-token"
END = 1_767_225_600.0 + 14 * 86400
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture(scope="session")
def seeded() -> MemoryStore:
    store = MemoryStore()
    seed(store, ["web", "worker", "urgent", "mailer", "reports"], days=14, end=END)
    return store


@pytest.fixture(scope="session")
def server(seeded: MemoryStore) -> Iterator[str]:
    app = DashboardApp(seeded, token=TOKEN)
    httpd = make_server("127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped: Playwright's sync API runs an event loop in this thread while it is open,
    and tests of other modules call ``asyncio.run``."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()
