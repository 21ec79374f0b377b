"""The settings every job-queue source shares (Redis and PostgreSQL backends alike)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from autoscaler.configkit import Csv, EnvSettings, Int

#: default cap on the number of discovered queues (``AUTOSCALER_<P>_QUEUE_DISCOVERY_LIMIT``)
DISCOVERY_LIMIT = 20


class QueueSettings(EnvSettings):
    """Which queues count for a process (per process, ``AUTOSCALER_<P>_``)."""

    queues: Csv | None = Field(
        None,
        description="job queues that count for this process, comma-separated",
        json_schema_extra={"default": "all found"},
    )
    queue_discovery_limit: Annotated[int, Int(1, 1000, "queues")] = Field(
        DISCOVERY_LIMIT,
        description="without `QUEUES`, watch at most this many queues: the first by name, with "
        "a warning in `sample` when some were left out",
    )
