"""The weekly digest (``AUTOSCALER_DIGEST=weekly``): one message a week to the alerts' webhook,
made from the history: per process the instance-hours, the share of minutes whose signal was
within the band (at or below the up threshold), the worst minute, the scale events; and the
alerts of the week. Pure over what the store returns; the daemon's leader sends it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from autoscaler.history import Event, HistoryStore, Minute

WEEK_S = 7 * 86400.0


def summarise(
    minutes: Mapping[str, Sequence[Minute]],
    events: Sequence[Event],
    bands: Mapping[str, float | None],
    since: float,
    until: float,
) -> str:
    """The digest's text for the minutes and events of [since, until); ``bands`` gives each
    process's up threshold in ms (``None`` where unknown)."""
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
    lines.append(
        "to see whether other settings would do better on this traffic: "
        "autoscaler tune --from-history <process>"
    )
    return "\n".join(lines)


def weekly(
    store: HistoryStore, processes: Sequence[str], bands: Mapping[str, float | None], now: float
) -> str:
    """The digest of the week before ``now`` from ``store``."""
    since = now - WEEK_S
    minutes: dict[str, list[Minute]] = {}
    events: dict[tuple[float, str], Event] = {}
    for process in processes:
        rows, evs = store.read(process, since, now)
        minutes[process] = rows
        for e in evs:
            events[(e.t, e.text)] = e  # the daemon's own events come with every process
    return summarise(minutes, sorted(events.values(), key=lambda e: e.t), bands, since, now)
