"""The weekly digest (``AUTOSCALER_DIGEST=weekly``): one message a week to the alerts' webhook,
made from the history: per process the instance-hours, the share of minutes whose signal was
within the band (at or below the up threshold), the worst minute, the scale events; the
alerts of the week; and per web process whether ``tune`` on the week would change anything
(``verdicts``: a small search, run by the daemon's leader in a thread of its own, off the tick
path, before it sends the digest). ``summarise`` is pure over what the store returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from autoscaler.history import Event, HistoryStore, Minute

if TYPE_CHECKING:
    from autoscaler.config import Settings

WEEK_S = 7 * 86400.0


def summarise(
    minutes: Mapping[str, Sequence[Minute]],
    events: Sequence[Event],
    bands: Mapping[str, float | None],
    since: float,
    until: float,
    *,
    verdicts: Mapping[str, str] | None = None,
) -> str:
    """The digest's text for the minutes and events of [since, until); ``bands`` gives each
    process's up threshold in ms (``None`` where unknown), ``verdicts`` what tuning on the week
    says per process (``tune_verdicts``)."""
    days = (until - since) / 86400.0
    start = time.strftime("%Y-%m-%d", time.gmtime(since))
    lines = [f"autoscaler: the last {days:.0f} days (from {start} UTC)"]
    for process, rows in minutes.items():
        if not rows:
            lines.append(f"- {process}: no history in this period")
            continue
        hours = sum(m.quantity or 0 for m in rows) / 60.0
        up = bands.get(process)
        known = [m for m in rows if m.p95 is not None]
        within = ""
        if up is not None and known:
            share = sum(1 for m in known if (m.p95 or 0.0) <= up) / len(known)
            within = f", {share:.2%} of minutes within the band"
        worst = max(known, key=lambda m: m.p95 or 0.0) if known else None
        worst_text = (
            f", worst minute {worst.p95:.0f} ms at "
            f"{time.strftime('%a %H:%M', time.gmtime(worst.t))} UTC"
            if worst is not None and worst.p95 is not None
            else ""
        )
        changes = sum(1 for e in events if e.process == process and e.kind == "decision")
        lines.append(
            f"- {process}: {hours:.1f} instance-hours{within}{worst_text}, {changes} scale events"
        )
    alerts = [e for e in events if e.kind == "alert"]
    lines.append(f"alerts: {len(alerts)}" + (":" if alerts else ""))
    lines.extend(f"  {time.strftime('%a %H:%M', time.gmtime(e.t))} {e.text}" for e in alerts[:10])
    if verdicts:
        lines.extend(f"- {process}: {text}" for process, text in verdicts.items())
        lines.append("(on this traffic, with the app model fitted from it: docs/dashboard.md)")
    else:
        lines.append(
            "to see whether other settings would do better on this traffic: "
            "autoscaler tune --from-history <process>"
        )
    return "\n".join(lines)


def read_week(
    store: HistoryStore, processes: Sequence[str], now: float
) -> tuple[dict[str, list[Minute]], list[Event]]:
    """The minutes of each process and the events of the week before ``now``."""
    since = now - WEEK_S
    minutes: dict[str, list[Minute]] = {}
    events: dict[tuple[float, str], Event] = {}
    for process in processes:
        rows, evs = store.read(process, since, now)
        minutes[process] = rows
        for e in evs:
            events[(e.t, e.text)] = e  # the daemon's own events come with every process
    return minutes, sorted(events.values(), key=lambda e: e.t)


def tune_verdicts(
    minutes: Mapping[str, Sequence[Minute]], events: Sequence[Event], settings: Settings
) -> dict[str, str]:
    """Per web process, what ``tune`` on its week says (``owntraffic.tune_verdict``); a process
    whose week cannot be replayed says why. Takes seconds of CPU per process."""
    from autoscaler.model import Metric
    from autoscaler.sim.owntraffic import tune_verdict

    out: dict[str, str] = {}
    for process, rows in minutes.items():
        p = settings.processes.get(process)
        if p is None or p.metric is not Metric.REQUEST_QUEUE_TIME:
            continue  # tune --from-history replays request queue time only
        own = [e for e in events if e.process == process]
        try:
            out[process] = tune_verdict(rows, own, settings, process)
        except ValueError as exc:
            out[process] = f"tune could not run on this week: {exc}"
    return out


def weekly(
    store: HistoryStore, processes: Sequence[str], bands: Mapping[str, float | None], now: float
) -> str:
    """The digest of the week before ``now`` from ``store`` (without tuning)."""
    minutes, events = read_week(store, processes, now)
    return summarise(minutes, events, bands, now - WEEK_S, now)
