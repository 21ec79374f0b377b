"""What ``simulate`` and ``tune`` share at their two ends, for request and job traces alike:
the flags' errors, the ``--policy`` names they take and the table they print (one row per
policy; the report repeats it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autoscaler.sim.runner import Result


class UsageError(Exception):
    """A bad flag value; the message names the flag."""


def policy_names(given: list[str] | None, known: Sequence[str], what: str = "") -> list[str]:
    """``default`` then the ``--policy`` values given (comma-separated or repeated, ``all`` for
    every one of ``known``), each once; an unknown name is a ``UsageError`` (``what`` says for
    which trace)."""
    names = ["default"]
    for item in given or []:
        for part in item.split(","):
            name = part.strip().lower()
            if name == "all":
                names.extend(known)
            elif name in known:
                names.append(name)
            else:
                raise UsageError(
                    f"--policy: unknown {name!r}{what} (one of {', '.join(known)}, all)"
                )
    return list(dict.fromkeys(names))


#: the first and the last columns of both tables: (figure, heading, format)
_LEAD = (
    ("policy", "policy", "{}"),
    ("instance_hours", "inst-hours", "{:.1f}"),
    ("slo_attainment", "SLO minutes", "{:.2%}"),
)
_TAIL = (
    ("scale_events", "scalings", "{}"),
    ("mean_instances", "mean inst", "{:.2f}"),
    ("max_instances", "max inst", "{}"),
)

COLUMNS = (
    *_LEAD,
    ("p95_queue_ms", "p95 ms", "{:.0f}"),
    ("p99_queue_ms", "p99 ms", "{:.0f}"),
    ("max_queue_ms", "max ms", "{:.0f}"),
    *_TAIL,
)

#: the columns of a job trace's table (``workercmd``) and report (``jobreport``)
JOB_COLUMNS = (
    *_LEAD,
    ("p95_wait_s", "p95 wait s", "{:.1f}"),
    ("max_wait_s", "max wait s", "{:.0f}"),
    ("interrupted_jobs", "interrupted", "{}"),
    ("interrupted_job_s", "lost job-s", "{:.0f}"),
    *_TAIL,
)


def table(results: Sequence[Result]) -> str:
    rows = [r.figures() for r in results]
    columns: tuple[tuple[str, str, str], ...] = COLUMNS
    if any("refused_requests" in row for row in rows):  # a router limit was set
        columns = (*_LEAD, ("refused_requests", "refused", "{}"), *COLUMNS[len(_LEAD) :])
    return render(columns, rows)


def render(columns: Sequence[tuple[str, str, str]], rows: Iterable[Mapping[str, Any]]) -> str:
    """A text table: a heading line, then one line per row with its figures formatted, the
    first column left-aligned and the others right-aligned."""
    lines = [[head for _, head, _ in columns]]
    lines += [[fmt.format(row[key]) for key, _, fmt in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            [line[0].ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        )
        for line in lines
    )
