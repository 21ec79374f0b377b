"""A FastAPI + Celery app whose web and worker processes queue-autoscaler sizes.

``GET /`` answers a page; ``POST /jobs?n=10&seconds=1`` publishes ``n`` Celery tasks that each
take ``seconds``. The autoscaler-specific lines are the ASGI middleware here (request queue
time) and the publish hook in ``tasks.py`` (how long tasks wait).
"""

from fastapi import FastAPI

from autoscaler.web.asgi import QueueTimeMiddleware
from tasks import work

app = FastAPI()
app.add_middleware(QueueTimeMiddleware)  # request queue time for the autoscaler


@app.get("/")
def index() -> dict[str, str]:
    return {"hello": "from fastapi-celery"}


@app.post("/jobs")
def enqueue(n: int = 1, seconds: float = 1.0) -> dict[str, int]:
    n, seconds = min(n, 1000), min(seconds, 60.0)
    for _ in range(n):
        work.delay(seconds)
    return {"enqueued": n}
