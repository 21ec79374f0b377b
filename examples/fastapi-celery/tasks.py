"""The Celery app and tasks of the fastapi-celery example (``celery -A tasks worker``)."""

import os
import time

from celery import Celery

import autoscaler.sources.celery_hook  # noqa: F401  (stamps each task's publish time)

app = Celery("tasks", broker=os.environ["REDIS_URL"])
app.conf.update(worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True)


@app.task(name="work")
def work(seconds: float) -> None:
    time.sleep(seconds)
