"""The dashboard page in a real headless Chromium over 14 seeded days of five processes."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest

from tests.dashboard.conftest import TOKEN

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


def _get(url: str, auth: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer wrong", "Basic " + base64.b64encode(b"x:wrong").decode(), "Basic !!"],
)
@pytest.mark.parametrize("path", ["/", "/api/processes", "/api/history?process=web&range=6h"])
def test_a_missing_or_wrong_token_gets_401_and_no_data(
    server: str, path: str, auth: str | None
) -> None:
    status, body = _get(server + path, auth)
    assert status == 401
    assert b"web" not in body and b"<html" not in body


def test_the_token_works_as_bearer_or_basic_password(server: str) -> None:
    for auth in (f"Bearer {TOKEN}", "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()):
        status, body = _get(server + "/api/processes", auth)
        assert status == 200
        assert b'"web"' in body


def _page(browser: Any, server: str, range_: str = "6h") -> Any:
    context = browser.new_context(
        http_credentials={"username": "ops", "password": TOKEN},
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    page.goto(f"{server}/?range={range_}")
    page.wait_for_selector("body[data-loaded=true]", timeout=15_000)
    return page


def test_the_page_draws_every_process_with_axes_that_carry_values_and_units(
    browser: Any, server: str
) -> None:
    page = _page(browser, server, "24h")
    for p in ("web", "worker", "urgent", "mailer", "reports"):
        assert page.locator(f"#process-{p} canvas").count() == 3
    ticks = page.evaluate(
        "() => Object.fromEntries(Object.entries(window.__charts.web)"
        ".filter(([k]) => k !== 'events').map(([k, u]) => [k, [u.tickLabels, u.timeLabels]]))"
    )
    for chart, unit in (("queue", " ms"), ("rate", " /s"), ("instances", " inst.")):
        y_labels, x_labels = ticks[chart]
        assert len(y_labels) >= 3 and all(label.endswith(unit) for label in y_labels if label)
        assert any(label[0].isdigit() for label in y_labels if label)
        assert len(x_labels) >= 3 and all(":" in label for label in x_labels)
    labels = page.locator("#process-web .u-title").all_inner_texts()
    assert any("band dashed" in t for t in labels)
    assert "seeded history" in page.locator("#process-web .status").inner_text()
    learned = page.locator("#process-web .learned").inner_text()
    assert learned == "learned: one instance carries 10 requests/s"
    assert "platform unreachable" in page.locator("#alerts").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#process-web").screenshot(path=str(SHOTS / "dashboard-web-24h.png"))
    page.close()


def test_hovering_a_scale_event_shows_its_reason(browser: Any, server: str) -> None:
    page = _page(browser, server, "6h")
    pos = page.evaluate(
        """() => { const c = window.__charts.web; const e = c.events[c.events.length - 1];
        const u = c.instances; u.over.scrollIntoView({block: 'center'});
        const r = u.over.getBoundingClientRect();
        return {x: r.left + u.valToPos(e.t, 'x'), y: r.top + u.valToPos(e.desired, 'y'),
                reason: e.reason}; }"""
    )
    page.mouse.move(pos["x"], pos["y"])
    tip = page.locator("#process-web .tooltip")
    tip.wait_for(state="visible", timeout=5_000)
    assert pos["reason"] in tip.inner_text()
    page.close()


def test_fourteen_days_of_five_processes_load_in_a_page(browser: Any, server: str) -> None:
    page = _page(browser, server, "14d")
    points = page.evaluate("() => window.__charts.web.queue.data[0].length")
    assert 0 < points <= 1500 + 1  # summarised into buckets, not 20,160 minutes
    page.screenshot(path=str(SHOTS / "dashboard-14d.png"), full_page=False)
    page.close()


def test_what_the_policy_learned_is_shown_and_an_unreadable_value_is_nothing(
    browser: Any, server: str, seeded: Any
) -> None:
    before = {p: seeded.get_meta(f"learned:{p}") for p in ("worker", "mailer", "urgent")}
    worker = {"slots": 4.0, "boot_s": 52.4, "bursts_every_s": 3600}
    seeded.put_meta("learned:worker", json.dumps(worker))
    floors = {
        "capacity": 20.0,
        "capacity_sure": False,
        "carried_quietly": 31.3,
        "above_band_pct": 0.1,
        "headroom": 0.36,
    }
    seeded.put_meta("learned:urgent", json.dumps(floors))
    seeded.put_meta("learned:mailer", "{not json")
    try:
        status, body = _get(server + "/api/history?process=mailer&range=1h", f"Bearer {TOKEN}")
        assert status == 200 and json.loads(body)["learned"] == {}
        page = _page(browser, server, "1h")
        shown = page.locator("#process-worker .learned").inner_text()
        assert (
            shown
            == "learned: serves 4 requests at once · boots in 52 s · jobs come in bursts every 1 h"
        )
        assert page.locator("#process-mailer .learned").inner_text() == "learned: nothing yet"
        assert page.locator("#process-urgent .learned").inner_text() == (
            "learned: one instance carries 20 requests/s (a floor so far)"
            " · carried 31.3 requests/s each below the band"
            " · keeps 0.36 spreads of the rate spare"
            " (0.1% of readings above the band in 6 h, bursts aside)"
        )
        page.close()
    finally:
        for p, raw in before.items():
            seeded.put_meta(f"learned:{p}", raw or "{}")
