"""The RQ jobs of the flask-rq example."""

import time


def work(seconds: float) -> None:
    time.sleep(seconds)
