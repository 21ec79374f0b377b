"""Job functions that the real workers started by these tests import and run."""

from __future__ import annotations

import time


def noop() -> None:
    return None


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def fail() -> None:
    raise RuntimeError("this job fails on purpose")
