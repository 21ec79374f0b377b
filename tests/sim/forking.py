"""Helpers for the tests of forked processes."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest


class StuckInChildren(io.StringIO):
    """A stream whose flush never returns outside the process that made it: as a stream whose
    lock another thread held when the process was forked."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = os.getpid()

    def flush(self) -> None:
        while os.getpid() != self.owner:
            time.sleep(1)


def stdio_stuck_in_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace stdout and stderr with streams that a forked child can never flush."""
    monkeypatch.setattr(sys, "stderr", StuckInChildren())
    monkeypatch.setattr(sys, "stdout", StuckInChildren())
