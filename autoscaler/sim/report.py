"""``simulate --report FILE.html``: one self-contained HTML file (inline SVG, no scripts, no
network) with the load, the instances each policy ran and its p95 queue time against the SLO
over time, and the comparison table."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from autoscaler.sim.output import COLUMNS
from autoscaler.sim.runner import Result, Setup

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
WIDTH, LEFT, RIGHT, TOP, BOTTOM = 960, 84, 10, 22, 34
MAX_POINTS = 1200


#: the reports' one stylesheet (web and workers)
STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1000px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; text-align: right; }
td:first-child, th:first-child { text-align: left; } tr:nth-child(even) { background: #f3f3f3; }
pre { white-space: pre-wrap; } figure { margin: 1em 0; }
</style>"""


def _downsample(values: Sequence[float], points: int = MAX_POINTS) -> list[float]:
    """At most ``points`` values, each the max of its bucket (peaks stay visible)."""
    if len(values) <= points:
        return list(values)
    size = math.ceil(len(values) / points)
    return [max(values[i : i + size]) for i in range(0, len(values), size)]


def _label(value: float, unit: str) -> str:
    if unit == "ms" and value >= 1000:
        return f"{value / 1000:.3g} s"
    return f"{value:.3g} {unit}"


class _Axis:
    """The time axis shared by every chart: ``minutes`` minutes from ``start`` (epoch s)."""

    def __init__(self, start: float, minutes: int) -> None:
        self.start = start
        self.minutes = max(minutes, 1)

    def ticks(self, height: int) -> list[str]:
        span_days = self.minutes / 1440
        fmt = "%Y-%m-%d" if span_days >= 3 else "%m-%d %H:%M"
        out = []
        for i in range(5):
            frac = i / 4
            x = LEFT + frac * (WIDTH - LEFT - RIGHT)
            stamp = datetime.fromtimestamp(self.start + frac * self.minutes * 60, UTC)
            anchor = "start" if i == 0 else "end" if i == 4 else "middle"
            out.append(
                f'<line x1="{x:.1f}" y1="{height - BOTTOM}" x2="{x:.1f}" '
                f'y2="{height - BOTTOM + 4}" stroke="#999"/>'
                f'<text x="{x:.1f}" y="{height - BOTTOM + 16}" font-size="11" '
                f'text-anchor="{anchor}">{stamp.strftime(fmt)}</text>'
            )
        return out


def _chart(
    title: str,
    series: Sequence[tuple[str, str, Sequence[float]]],
    axis: _Axis,
    *,
    unit: str,
    height: int = 200,
    log: bool = False,
    line_at: float | None = None,
    top: float | None = None,
) -> str:
    """An SVG line chart of ``(name, colour, per-minute values)`` series."""
    data = [(name, colour, _downsample(values)) for name, colour, values in series]
    if top is None:
        top = max((max(v) for _, _, v in data if v), default=1.0)
        if line_at is not None:
            top = max(top, line_at * 2)
    low = 1.0 if log else 0.0
    top = max(top, 10.0 if log else 1e-9)
    inner = height - TOP - BOTTOM

    def y(value: float) -> float:
        frac = math.log10(max(value, low) / low) / math.log10(top / low) if log else value / top
        return height - BOTTOM - min(frac, 1.0) * inner

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{LEFT}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{height - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{height - BOTTOM}" '
        'stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{height - BOTTOM}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" font-size="11" text-anchor="end">'
        f"{html.escape(_label(top, unit))}</text>",
        f'<text x="{LEFT - 4}" y="{height - BOTTOM}" font-size="11" text-anchor="end">'
        f"{html.escape(_label(low, unit))}</text>",
        *axis.ticks(height),
    ]
    if line_at is not None:
        ly = y(line_at)
        parts.append(
            f'<line x1="{LEFT}" y1="{ly:.1f}" x2="{WIDTH - RIGHT}" y2="{ly:.1f}" '
            'stroke="#000" stroke-dasharray="5,4"/>'
            f'<text x="{LEFT - 4}" y="{ly + 4:.1f}" font-size="11" text-anchor="end">'
            f"SLO {html.escape(_label(line_at, unit))}</text>"
        )
    for i, (name, colour, values) in enumerate(data):
        if not values:
            continue
        step = (WIDTH - LEFT - RIGHT) / max(len(values) - 1, 1)
        points = " ".join(f"{LEFT + j * step:.1f},{y(v):.1f}" for j, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" '
            f'stroke-opacity="0.85" points="{points}"/>'
        )
        if len(data) > 1:
            parts.append(
                f'<text x="{WIDTH - RIGHT - 90 * (len(data) - i)}" y="14" font-size="12" '
                f'fill="{colour}">{html.escape(name)}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def render(description: str, setup: Setup, results: Sequence[Result], start: float) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in COLUMNS)
    rows = []
    colours = {r.policy: COLOURS[i % len(COLOURS)] for i, r in enumerate(results)}
    for r in results:
        figures = r.figures()
        cells = "".join(f"<td>{html.escape(fmt.format(figures[k]))}</td>" for k, _, fmt in COLUMNS)
        rows.append(f'<tr style="color:{colours[r.policy]}">{cells}</tr>')
    load = results[0].load if results else []
    axis = _Axis(start, len(load))
    charts = [
        _chart("Load (requests/s, max per point)", [("load", "#444", load)], axis, unit="req/s"),
        _chart(
            "Instances (max per point)",
            [(r.policy, colours[r.policy], [float(x) for x in r.instances]) for r in results],
            axis,
            unit="inst",
            height=240,
        ),
    ]
    worst = max((max(r.p95_series, default=0.0) for r in results), default=1.0)
    for r in results:
        charts.append(
            _chart(
                f"{r.policy}: p95 queue time per minute (max per point, log scale) "
                f"- {r.slo_attainment:.2%} of minutes within the SLO",
                [(r.policy, colours[r.policy], r.p95_series)],
                axis,
                unit="ms",
                height=150,
                log=True,
                line_at=setup.slo_ms,
                top=max(worst, setup.slo_ms * 2, 10.0),
            )
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autoscaler simulate</title>
{STYLE}</head><body>
<h1>autoscaler simulate</h1>
<pre>{html.escape(description)}</pre>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<p>SLO minutes: share of minutes whose p95 queue time is within {setup.slo_ms:g} ms.
Instance-hours count booting instances too. Each chart point is the highest value of the minutes
it covers, so short peaks stay visible.</p>
{"".join(f"<figure>{c}</figure>" for c in charts)}
</body></html>
"""


def write_report(
    path: Path, description: str, setup: Setup, results: Sequence[Result], start: float
) -> None:
    path.write_text(render(description, setup, results, start), encoding="utf-8")
