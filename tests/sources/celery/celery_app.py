"""A real Celery app for the celery source's tests.

kombu's Redis transport refuses redis-py below 6.1 while arq needs redis-py below 6, so this runs
under a second interpreter (``.venv-celery``, see ``celery_python`` in test_celery.py):

    python -m tests.sources.celery.celery_app '<json list of publish specs>'

publishes one ``nap`` task per spec (keys: ``seconds``, and ``apply_async`` options such as
``queue``, ``priority``, ``countdown``, ``eta`` as ISO 8601) and prints, per task, the epoch time
just after the publish returned. With ``STAMP=1`` in the environment the app installs the
publish hook first, as a user's app does. The same module is the worker's app
(``celery -A tests.sources.celery.celery_app worker``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime

from celery import Celery

if os.environ.get("STAMP") == "1":
    import autoscaler.sources.celery_hook  # noqa: F401

app = Celery("tests", broker=os.environ["CELERY_BROKER_URL"])
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=False, broker_connection_retry=False)


@app.task(name="nap")
def nap(seconds: float) -> None:
    time.sleep(seconds)


def main(specs: list[dict[str, object]]) -> None:
    published = []
    for spec in specs:
        seconds = spec.pop("seconds", 0)
        if isinstance(spec.get("eta"), str):
            spec["eta"] = datetime.fromisoformat(str(spec["eta"]))
        nap.apply_async(args=[seconds], **spec)
        published.append(time.time())
    print(json.dumps(published))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
