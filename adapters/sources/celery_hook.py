"""The one line a Celery app adds so that the ``celery`` source can tell how long tasks wait.

Celery's Redis messages carry no publish time. In the module that creates the Celery app, add::

    import autoscaler.sources.celery_hook  # noqa: F401  (stamps each task when it is published)

On import this connects a ``before_task_publish`` handler that writes ``published_at`` (epoch
seconds) into the message properties, for every publish including ``Task.retry()``. It is the
same field judoscale's hook writes, so an app moving from judoscale already has it. The handler
never raises: a task is always published, stamped or not.
"""

from __future__ import annotations

import time
from typing import Any

from celery.signals import before_task_publish  # type: ignore[import-untyped]

DISPATCH_UID = "queue-autoscaler-published-at"


def stamp_published_at(properties: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish`` handler: record when the task was published."""
    if isinstance(properties, dict):
        properties["published_at"] = time.time()


before_task_publish.connect(stamp_published_at, weak=False, dispatch_uid=DISPATCH_UID)
