"""A Flask + RQ app whose web and worker processes queue-autoscaler sizes.

``GET /`` answers a page; ``POST /jobs?n=10&seconds=1`` enqueues ``n`` RQ jobs that each take
``seconds``. The one autoscaler-specific line is the middleware: it measures request queue time
and publishes it to ``REDIS_URL`` (importing it loads only the standard library and ``redis``).
"""

import os

from flask import Flask, request
from redis import Redis
from rq import Queue

import tasks
from autoscaler.web.wsgi import QueueTimeMiddleware

app = Flask(__name__)
app.wsgi_app = QueueTimeMiddleware(app.wsgi_app)  # request queue time for the autoscaler

queue = Queue("default", connection=Redis.from_url(os.environ["REDIS_URL"]))


@app.get("/")
def index() -> str:
    return "hello from flask-rq\n"


@app.post("/jobs")
def enqueue() -> dict[str, int]:
    n = min(int(request.args.get("n", "1")), 1000)
    seconds = min(float(request.args.get("seconds", "1")), 60.0)
    for _ in range(n):
        queue.enqueue(tasks.work, seconds)
    return {"enqueued": n}
