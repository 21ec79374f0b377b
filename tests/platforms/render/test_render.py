"""The Render adapter: parse tables, then real HTTP against the fake Render API."""

from __future__ import annotations

import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.platforms import render
from autoscaler.ports import (
    ConfigError,
    Conflict,
    PlatformError,
    RateLimited,
    Rejected,
    WriteUnknown,
)
from tests.platforms.conftest import RENDER_KEY, TIMEOUT, render_env
from tests.platforms.fake_render import FakeRender

WEB, WORKER = "srv-web0000001", "srv-wrk0000001"

# -- pure parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "bad"),
    [
        ({"RENDER_API_KEY": None}, "RENDER_API_KEY"),
        ({"AUTOSCALER_WORKER_RENDER_SERVICE_ID": None}, "AUTOSCALER_WORKER_RENDER_SERVICE_ID"),
        ({"AUTOSCALER_WEB_RENDER_SERVICE_ID": "web"}, "AUTOSCALER_WEB_RENDER_SERVICE_ID"),
        ({"AUTOSCALER_WEB_RENDER_SERVICE_ID": "srv-a/../b"}, "AUTOSCALER_WEB_RENDER_SERVICE_ID"),
        ({"AUTOSCALER_WORKER_RENDER_SERVICE_ID": WEB}, "AUTOSCALER_WORKER_RENDER_SERVICE_ID"),
    ],
)
def test_parse_names_the_missing_or_invalid_variable(
    change: dict[str, str | None], bad: str
) -> None:
    env = render_env("http://127.0.0.1:1")
    for key, value in change.items():
        if value is None:
            del env[key]
        else:
            env[key] = value
    with pytest.raises(ConfigError) as err:
        render.parse(config.load(env))
    assert list(err.value.problems) == [bad]


def test_parse_maps_each_process_to_its_service() -> None:
    parsed = render.parse(config.load(render_env("http://r")))
    assert parsed.services == {"web": WEB, "worker": WORKER}
    assert parsed.api_url == "http://r/v1"
    assert parsed.variables["worker"] == "AUTOSCALER_WORKER_RENDER_SERVICE_ID"


def _service(**details: object) -> dict[str, object]:
    return {
        "id": WEB,
        "type": "web_service",
        "suspended": "not_suspended",
        "updatedAt": "2026-01-01T00:00:10.5Z",
        "serviceDetails": {"numInstances": 3, **details},
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_service(), render.Service(WEB, 3, False, False, 1_767_225_610.5)),
        (
            _service(autoscaling={"enabled": True, "min": 1, "max": 3}),
            render.Service(WEB, 3, True, False, 1_767_225_610.5),
        ),
        (
            _service(autoscaling={"enabled": False, "min": 1, "max": 3}),
            render.Service(WEB, 3, False, False, 1_767_225_610.5),
        ),
        (
            {**_service(), "suspended": "suspended", "updatedAt": None},
            render.Service(WEB, 3, False, True, None),
        ),
    ],
)
def test_parse_service(body: dict[str, object], expected: render.Service) -> None:
    assert render.parse_service(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"id": "crn-1", "type": "cron_job", "serviceDetails": {"schedule": "* * * * *"}},
        {"id": WEB, "serviceDetails": {"numInstances": "3"}},
        {"id": WEB},
        [],
    ],
)
def test_parse_service_refuses_what_has_no_instance_count(body: object) -> None:
    with pytest.raises(PlatformError):
        render.parse_service(body)


# -- over HTTP ---------------------------------------------------------------------------------


def test_read_gets_each_service_with_the_bearer_key(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    formation = render_adapter.read(["web", "worker"])
    assert {p: f.quantity for p, f in formation.items()} == {"web": 2, "worker": 1}
    assert [c.path for c in fake_render.journal] == [
        f"/v1/services/{WEB}",
        f"/v1/services/{WORKER}",
    ]
    assert fake_render.journal[0].headers["authorization"] == f"Bearer {RENDER_KEY}"
    assert fake_render.journal[0].headers["accept"] == "application/json"


def test_scale_rereads_then_posts_numinstances_and_gets_202(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    render_adapter.scale({"web": 4, "worker": 1}, expected={"web": 2, "worker": 1})
    (post,) = fake_render.writes()
    assert (post.path, post.body, post.status) == (
        f"/v1/services/{WEB}/scale",
        {"numInstances": 4},
        202,
    )
    assert [c.method for c in fake_render.journal] == ["GET", "GET", "POST"]
    assert fake_render.instances(WEB) == 4


def test_a_count_changed_by_someone_else_is_a_conflict_and_not_overwritten(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    fake_render.set_instances(WORKER, 3)
    with pytest.raises(Conflict, match="worker is 3 \\(expected 1\\)"):
        render_adapter.scale({"web": 4, "worker": 2}, expected={"web": 2, "worker": 1})
    assert fake_render.writes() == []


def test_a_service_under_renders_own_autoscaling_is_refused_clearly(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    fake_render.enable_autoscaling(WEB)
    with pytest.raises(Rejected, match="Render's own autoscaling is enabled") as err:
        render_adapter.scale({"web": 4}, expected={"web": 2})
    assert err.value.retryable is False
    with pytest.raises(PlatformError, match="turn it off"):
        render_adapter.read(["web"])
    assert fake_render.writes() == []
    with pytest.raises(ConfigError) as config_err:
        render_adapter.check(["web", "worker"])
    assert "autoscaling" in config_err.value.problems["AUTOSCALER_WEB_RENDER_SERVICE_ID"]


def test_a_suspended_service_reads_as_zero_and_is_not_scaled(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    fake_render.services[WORKER]["suspended"] = "suspended"
    assert render_adapter.read(["worker"])["worker"].quantity == 0
    with pytest.raises(Rejected, match="suspended"):
        render_adapter.scale({"worker": 2}, expected={"worker": 1})
    assert fake_render.writes() == []


def test_an_out_of_range_count_is_rejected_for_good(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    with pytest.raises(Rejected, match="between 0 and 100") as err:
        render_adapter.scale({"web": 101}, expected={"web": 2})
    assert err.value.retryable is False
    assert fake_render.instances(WEB) == 2


def test_429_uses_retry_after_and_holds_back_without_calling(
    render_adapter: render.Render, fake_render: FakeRender, clock: FakeClock
) -> None:
    fake_render.fail(429, method="POST")
    with pytest.raises(RateLimited, match="rate limit exceeded") as err:
        render_adapter.scale({"web": 3}, expected={"web": 2})
    assert err.value.retry_after == 7.0
    calls = len(fake_render.journal)
    with pytest.raises(RateLimited):
        render_adapter.scale({"web": 3}, expected={"web": 2})
    assert len(fake_render.writes()) == 1  # the second POST never left
    assert len(fake_render.journal) == calls + 1  # only its re-read did
    clock.advance(7.1)
    render_adapter.scale({"web": 3}, expected={"web": 2})
    assert fake_render.instances(WEB) == 3


def test_ratelimit_remaining_zero_blocks_until_the_reset(
    render_adapter: render.Render, fake_render: FakeRender, clock: FakeClock
) -> None:
    fake_render.windows["POST"] = (clock.now().mono - 50, 29)  # one POST left in this minute
    render_adapter.scale({"web": 3}, expected={"web": 2})
    assert fake_render.writes()[-1].status == 202
    with pytest.raises(RateLimited) as err:
        render_adapter.scale({"web": 2}, expected={"web": 3})
    assert err.value.retry_after is not None and 9 <= err.value.retry_after <= 10
    assert fake_render.writes()[-1].status == 202  # the blocked POST was never sent
    clock.advance(10)
    render_adapter.scale({"web": 2}, expected={"web": 3})


def test_a_reset_sent_as_an_epoch_blocks_until_then_not_for_decades(
    render_adapter: render.Render, fake_render: FakeRender, clock: FakeClock
) -> None:
    fake_render.reset_as_epoch = True  # Render's rate-limit page: "UTC Epoch Seconds"
    fake_render.windows["POST"] = (clock.now().mono - 50, 29)  # one POST left in this minute
    render_adapter.scale({"web": 3}, expected={"web": 2})
    assert fake_render.writes()[-1].status == 202
    with pytest.raises(RateLimited) as err:
        render_adapter.scale({"web": 2}, expected={"web": 3})
    assert err.value.retry_after is not None and 9 <= err.value.retry_after <= 11
    clock.advance(11)
    render_adapter.scale({"web": 2}, expected={"web": 3})
    assert fake_render.instances(WEB) == 2


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("45", 45.0),
        (" 45 ", 45.0),
        ("1767225645", 45.0),  # the FakeClock's wall is 1_767_225_600
        ("1767225500", 0.0),  # an epoch already past
        ("99999999999", 3600.0),  # never more than an hour
        ("86400", 3600.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_reset_delay_reads_both_forms_and_caps_at_an_hour(header: str, wait: float | None) -> None:
    from autoscaler.platforms._http import reset_delay

    assert reset_delay(header, 1_767_225_600.0) == wait


def test_our_pace_stays_under_thirty_posts_a_minute(
    render_adapter: render.Render, fake_render: FakeRender, clock: FakeClock
) -> None:
    sent = 0
    for _ in range(200):  # far more writes than the limit allows, 0.1 s apart
        current = fake_render.instances(WEB)
        try:
            render_adapter.scale({"web": 5 - current}, expected={"web": current})
            sent += 1
        except RateLimited:
            pass
        clock.advance(0.1)
    assert 0 < sent <= 30  # 20 s of trying
    assert all(c.status == 202 for c in fake_render.writes())


def test_5xx_is_retried_and_a_timeout_after_the_post_is_write_unknown(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    fake_render.fail(502, method="GET")
    assert render_adapter.read(["web"])["web"].quantity == 2
    fake_render.slow(TIMEOUT * 3, method="POST")
    with pytest.raises(WriteUnknown):
        render_adapter.scale({"web": 3}, expected={"web": 2})
    assert len(fake_render.writes()) == 1
    assert render_adapter.read(["web"])["web"].quantity == 3


def test_a_write_that_keeps_getting_5xx_is_write_unknown(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    fake_render.fail(500, method="POST", times=5)
    with pytest.raises(WriteUnknown, match="500"):
        render_adapter.scale({"web": 3}, expected={"web": 2})
    assert len(fake_render.writes()) == 3


def test_a_failure_after_another_service_was_scaled_is_write_unknown(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    fake_render.fail(404, method="POST", path=WORKER)
    with pytest.raises(WriteUnknown, match="scaled web=3 but not worker"):
        render_adapter.scale({"web": 3, "worker": 2}, expected={"web": 2, "worker": 1})
    assert (fake_render.instances(WEB), fake_render.instances(WORKER)) == (3, 1)


def test_check_reads_without_writing(
    render_adapter: render.Render, fake_render: FakeRender
) -> None:
    assert render_adapter.check(["web", "worker"]) == "render: web=2, worker=1"
    assert {c.method for c in fake_render.journal} == {"GET"}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RENDER_API_KEY": "rnd_wrongKey0000000"}, "RENDER_API_KEY"),
        (
            {"AUTOSCALER_WORKER_RENDER_SERVICE_ID": "srv-missing0001"},
            "AUTOSCALER_WORKER_RENDER_SERVICE_ID",
        ),
    ],
)
def test_check_names_a_refused_key_or_unknown_service(
    fake_render: FakeRender, clock: FakeClock, env: dict[str, str], variable: str
) -> None:
    adapter = render.Render(
        render.parse(config.load(render_env(fake_render.url, **env))), clock=clock
    )
    with pytest.raises(ConfigError) as err:
        adapter.check(["web", "worker"])
    adapter.close()
    assert list(err.value.problems) == [variable]


def test_build_reads_the_settings() -> None:
    adapter = render.build(config.load(render_env("http://127.0.0.1:1")))
    assert adapter.name == "render"
    assert str(adapter.http._client.base_url) == "http://127.0.0.1:1/v1/"
    adapter.close()
