"""``simulate --report FILE.html``: one self-contained HTML file (inline SVG, no scripts, no
network) with the load, the instances each policy ran and its p95 queue time against the SLO
over time, and the comparison table."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from autoscaler.sim.runner import Result, Setup

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
WIDTH, HEIGHT, PAD = 960, 220, 48
MAX_POINTS = 1200


def _downsample(values: Sequence[float], points: int = MAX_POINTS) -> list[float]:
    """At most ``points`` values, each the max of its bucket (peaks stay visible)."""
    if len(values) <= points:
        return list(values)
    size = math.ceil(len(values) / points)
    return [max(values[i : i + size]) for i in range(0, len(values), size)]


def _chart(
    title: str,
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    unit: str,
    log: bool = False,
    line_at: float | None = None,
) -> str:
    data = [(name, _downsample(values)) for name, values in series]
    top = max((max(v) for _, v in data if v), default=1.0)
    if line_at is not None:
        top = max(top, line_at)
    top = max(top, 1e-9)
    low = 1.0 if log else 0.0
    if log:
        top = max(top, 10.0)

    def y(value: float) -> float:
        if log:
            frac = (math.log10(max(value, low)) - math.log10(low)) / (
                math.log10(top) - math.log10(low)
            )
        else:
            frac = value / top
        return HEIGHT - PAD / 2 - frac * (HEIGHT - PAD)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{PAD}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD / 2}" x2="{WIDTH - 8}" y2="{HEIGHT - PAD / 2}" '
        'stroke="#999"/>',
        f'<text x="4" y="{y(top) + 4:.1f}" font-size="11">{top:.3g} {unit}</text>',
        f'<text x="4" y="{HEIGHT - PAD / 2:.1f}" font-size="11">{low:g}</text>',
    ]
    if line_at is not None:
        parts.append(
            f'<line x1="{PAD}" y1="{y(line_at):.1f}" x2="{WIDTH - 8}" y2="{y(line_at):.1f}" '
            'stroke="#000" stroke-dasharray="5,4"/>'
            f'<text x="{WIDTH - 120}" y="{y(line_at) - 4:.1f}" font-size="11">'
            f"SLO {line_at:g} {unit}</text>"
        )
    for i, (name, values) in enumerate(data):
        if not values:
            continue
        step = (WIDTH - PAD - 8) / max(len(values) - 1, 1)
        points = " ".join(f"{PAD + j * step:.1f},{y(v):.1f}" for j, v in enumerate(values))
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{points}"/>'
        )
        parts.append(
            f'<text x="{PAD + 10 + 110 * i}" y="{HEIGHT - 4}" font-size="11" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render(description: str, setup: Setup, results: Sequence[Result]) -> str:
    from autoscaler.sim.commands import COLUMNS

    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in COLUMNS)
    rows = []
    for r in results:
        figures = r.figures()
        cells = "".join(f"<td>{html.escape(fmt.format(figures[k]))}</td>" for k, _, fmt in COLUMNS)
        rows.append(f"<tr>{cells}</tr>")
    load = results[0].load if results else []
    charts = [
        _chart("Load (requests/s, per minute)", [("load", load)], unit="req/s"),
        _chart(
            "Instances per policy (max per minute)",
            [(r.policy, [float(x) for x in r.instances]) for r in results],
            unit="inst",
        ),
    ]
    charts.append(
        _chart(
            "p95 queue time per minute against the SLO (log scale)",
            [(r.policy, r.p95_series) for r in results],
            unit="ms",
            log=True,
            line_at=setup.slo_ms,
        )
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autoscaler simulate</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1000px; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }} tr:nth-child(even) {{ background: #f3f3f3; }}
pre {{ white-space: pre-wrap; }}
</style></head><body>
<h1>autoscaler simulate</h1>
<pre>{html.escape(description)}</pre>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<p>SLO minutes: share of minutes whose p95 queue time is within {setup.slo_ms:g} ms.
Instance-hours count booting instances too.</p>
{"".join(f"<figure>{c}</figure>" for c in charts)}
</body></html>
"""


def write_report(path: Path, description: str, setup: Setup, results: Sequence[Result]) -> None:
    path.write_text(render(description, setup, results), encoding="utf-8")
