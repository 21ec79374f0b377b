"""The table ``simulate`` and ``tune`` print (and the report repeats): one row per policy."""

from __future__ import annotations

from collections.abc import Sequence

from autoscaler.sim.runner import Result

COLUMNS = (
    ("policy", "policy", "{}"),
    ("instance_hours", "inst-hours", "{:.1f}"),
    ("slo_attainment", "SLO minutes", "{:.2%}"),
    ("p95_queue_ms", "p95 ms", "{:.0f}"),
    ("p99_queue_ms", "p99 ms", "{:.0f}"),
    ("max_queue_ms", "max ms", "{:.0f}"),
    ("scale_events", "scalings", "{}"),
    ("mean_instances", "mean inst", "{:.2f}"),
    ("max_instances", "max inst", "{}"),
)


def table(results: Sequence[Result]) -> str:
    rows = [[head for _, head, _ in COLUMNS]]
    for r in results:
        figures = r.figures()
        rows.append([fmt.format(figures[key]) for key, _, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
