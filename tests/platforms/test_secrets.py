"""Tokens never appear in an error message or a log line, even when the API echoes them back."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from autoscaler.platforms import heroku, render
from autoscaler.ports import AutoscalerError

from .conftest import HEROKU_TOKEN, RENDER_KEY
from .fake_heroku import FakeHeroku
from .fake_render import FakeRender
from .fakeserver import FakeServer

Step = tuple[Callable[[FakeServer], None], Callable[[], object]]


def _messages(fake: FakeServer, steps: list[Step]) -> list[str]:
    """Arm one fault, make one call, keep the message of the error it raises."""
    fake.leak_auth = True  # a hostile API: every injected error quotes our request headers
    messages = []
    for arm, call in steps:
        arm(fake)
        with pytest.raises(AutoscalerError) as err:
            call()
        messages.append(str(err.value))
    return messages


def test_the_heroku_token_never_shows(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    read = lambda: heroku_adapter.read(["web"])  # noqa: E731
    messages = _messages(
        fake_heroku,
        [
            (lambda f: f.fail(500, times=3), read),
            (
                lambda f: f.fail(422, method="PATCH"),
                lambda: heroku_adapter.scale({"web": 3}, {"web": 2}),
            ),
            (lambda f: f.fail(401), lambda: heroku_adapter.check(["web"])),
            (lambda f: f.fail(429), read),
        ],
    )
    assert all("[REDACTED]" in m for m in messages), messages
    assert not [m for m in messages if HEROKU_TOKEN in m]
    assert len(fake_heroku.journal) == 7 and HEROKU_TOKEN not in caplog.text


def test_the_render_key_never_shows(
    render_adapter: render.Render, fake_render: FakeRender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    read = lambda: render_adapter.read(["web"])  # noqa: E731
    messages = _messages(
        fake_render,
        [
            (lambda f: f.fail(503, times=3), read),
            (
                lambda f: f.fail(400, method="POST"),
                lambda: render_adapter.scale({"web": 3}, {"web": 2}),
            ),
            (lambda f: f.fail(401), lambda: render_adapter.check(["web"])),
            (lambda f: f.fail(429), read),
        ],
    )
    assert all("[REDACTED]" in m for m in messages), messages
    assert not [m for m in messages if RENDER_KEY in m]
    assert len(fake_render.journal) == 7 and RENDER_KEY not in caplog.text
