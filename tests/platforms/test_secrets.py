"""Tokens never appear in an error message or a log line, even when the API echoes them back."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from autoscaler.ports import AutoscalerError

from .conftest import HEROKU_TOKEN, RENDER_KEY
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


#: per platform: its adapter and fake (fixtures), its secret, a 5xx it retries and a refused write
PLATFORMS = {
    "heroku": ("heroku_adapter", "fake_heroku", HEROKU_TOKEN, 500, (422, "PATCH")),
    "render": ("render_adapter", "fake_render", RENDER_KEY, 503, (400, "POST")),
}


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_the_api_secret_never_shows(
    platform: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    adapter_fixture, fake_fixture, secret, server_error, (refused, write) = PLATFORMS[platform]
    adapter = request.getfixturevalue(adapter_fixture)
    fake: FakeServer = request.getfixturevalue(fake_fixture)
    caplog.set_level(logging.DEBUG)
    read = lambda: adapter.read(["web"])  # noqa: E731
    messages = _messages(
        fake,
        [
            (lambda f: f.fail(server_error, times=3), read),
            (
                lambda f: f.fail(refused, method=write),
                lambda: adapter.scale({"web": 3}, {"web": 2}),
            ),
            (lambda f: f.fail(401), lambda: adapter.check(["web"])),
            (lambda f: f.fail(429), read),
        ],
    )
    assert all("[REDACTED]" in m for m in messages), messages
    assert not [m for m in messages if secret in m]
    assert len(fake.journal) == 7 and secret not in caplog.text
