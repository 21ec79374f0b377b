"""``simulate --report FILE.html`` for a job trace: one self-contained HTML file (inline SVG,
no scripts, no network) with the queue depth and the oldest due job's age over time, the
instances each policy ran with its interruptions marked, and the comparison table."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from autoscaler.sim.output import JOB_COLUMNS as COLUMNS
from autoscaler.sim.report import COLOURS, STYLE, _Axis, _chart
from autoscaler.sim.workersim import WorkerResult, WorkerSetup


def _marks(result: WorkerResult, colour: str, top: float) -> str:
    """Ticks above the instances chart where a downscale interrupted jobs (one per minute)."""
    from autoscaler.sim.report import LEFT, RIGHT, WIDTH

    minutes = max(len(result.interruptions), 1)
    width = WIDTH - LEFT - RIGHT
    out = []
    for m, count in enumerate(result.interruptions):
        if count:
            x = LEFT + width * m / max(minutes - 1, 1)
            out.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + 8}" stroke="{colour}" '
                f'stroke-width="1.5"><title>{count} interrupted</title></line>'
            )
    return "".join(out)


def render_jobs(
    description: str, setup: WorkerSetup, results: Sequence[WorkerResult], start: float
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in COLUMNS)
    colours = {r.policy: COLOURS[i % len(COLOURS)] for i, r in enumerate(results)}
    rows = []
    for r in results:
        cells = "".join(
            f"<td>{html.escape(fmt.format(getattr(r, key)))}</td>" for key, _, fmt in COLUMNS
        )
        rows.append(f'<tr style="color:{colours[r.policy]}">{cells}</tr>')
    minutes = max((len(r.instances) for r in results), default=0)
    axis = _Axis(start, minutes)
    charts = []
    instances = _chart(
        "Instances (max per point); a tick on top marks interrupted jobs",
        [(r.policy, colours[r.policy], [float(x) for x in r.instances]) for r in results],
        axis,
        unit="inst",
        height=240,
    )
    marks = "".join(_marks(r, colours[r.policy], 16 + 3 * i) for i, r in enumerate(results))
    charts.append(instances.replace("</svg>", marks + "</svg>"))
    for r in results:
        charts.append(
            _chart(
                f"{r.policy}: jobs waiting (max per point)",
                [(r.policy, colours[r.policy], r.depth)],
                axis,
                unit="jobs",
                height=130,
            )
        )
        charts.append(
            _chart(
                f"{r.policy}: oldest due job's age per minute (log scale) - "
                f"{r.slo_attainment:.2%} of minutes within the SLO",
                [(r.policy, colours[r.policy], [1000.0 * a for a in r.age])],
                axis,
                unit="ms",
                height=150,
                log=True,
                line_at=setup.slo_ms,
                top=max(max((1000.0 * a for a in r.age), default=0.0), 2 * setup.slo_ms),
            )
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autoscaler simulate (workers)</title>
{STYLE}</head><body>
<h1>autoscaler simulate: workers</h1>
<pre>{html.escape(description)}</pre>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<p>SLO minutes: share of minutes whose oldest due job is at most {setup.slo_ms / 1000:g} s old.
Wait: the time a job spent in the queue (again after an interruption). Lost job-s: the work
that interrupted jobs had done when a downscale stopped their instance. Instance-hours count
booting and stopping instances too. Each chart point is the highest value of the minutes it
covers.</p>
{"".join(f"<figure>{c}</figure>" for c in charts)}
</body></html>
"""


def write_job_report(
    path: Path,
    description: str,
    setup: WorkerSetup,
    results: Sequence[WorkerResult],
    start: float,
) -> None:
    path.write_text(render_jobs(description, setup, results, start), encoding="utf-8")
