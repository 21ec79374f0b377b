"""The Heroku adapter: parse tables, then real HTTP against the fake Heroku API."""

from __future__ import annotations

import httpx
import pytest

from autoscaler import config
from autoscaler.clock import FakeClock
from autoscaler.model import Formation
from autoscaler.platforms import heroku
from autoscaler.ports import (
    ConfigError,
    Conflict,
    PlatformError,
    RateLimited,
    Rejected,
    WriteUnknown,
)
from tests.platforms.conftest import HEROKU_TOKEN, TIMEOUT, heroku_env
from tests.platforms.fake_heroku import ACCEPT, PREBOOT_MESSAGE, FakeHeroku

# -- pure parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "extra", "bad"),
    [
        ("HEROKU_API_TOKEN", {}, "HEROKU_API_TOKEN"),
        ("HEROKU_APP_NAME", {}, "HEROKU_APP_NAME"),
        (None, {"HEROKU_APP_NAME": "My_App"}, "HEROKU_APP_NAME"),
        (None, {"HEROKU_APP_NAME": "a"}, "HEROKU_APP_NAME"),
    ],
)
def test_parse_names_the_missing_or_invalid_variable(
    drop: str | None, extra: dict[str, str], bad: str
) -> None:
    env = heroku_env("http://127.0.0.1:1", **extra)
    if drop:
        del env[drop]
    with pytest.raises(ConfigError) as err:
        heroku.parse(config.load(env))
    assert list(err.value.problems) == [bad]


@pytest.mark.parametrize("app", ["my-app", "a1b", "01234567-89ab-cdef-0123-456789abcdef"])
def test_parse_accepts_app_names_and_ids(app: str) -> None:
    parsed = heroku.parse(config.load(heroku_env("http://h", HEROKU_APP_NAME=app)))
    assert (parsed.app, parsed.api_url, parsed.token) == (app, "http://h", HEROKU_TOKEN)


def test_parse_formation_reads_quantities_and_update_times() -> None:
    body = [
        {"type": "web", "quantity": 3, "updated_at": "2026-01-01T00:00:10Z"},
        {"type": "worker", "quantity": 0, "updated_at": None},
    ]
    assert heroku.parse_formation(body) == {
        "web": Formation(3, updated_at=1_767_225_610.0),
        "worker": Formation(0, updated_at=None),
    }


@pytest.mark.parametrize(
    "body",
    [
        {"type": "web", "quantity": 1},
        [{"type": "web"}],
        [{"type": "web", "quantity": "3"}],
        [{"type": "web", "quantity": True}],
        [{"quantity": 1}],
        ["web"],
    ],
)
def test_parse_formation_refuses_what_it_cannot_read(body: object) -> None:
    with pytest.raises(PlatformError):
        heroku.parse_formation(body)


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (422, {"id": "invalid_params", "message": PREBOOT_MESSAGE}, True),
        (422, {"id": "invalid_params", "message": "Release phase is running."}, True),
        (
            422,
            {
                "id": "cannot_run_above_limit",
                "message": "Cannot run more than 1 Basic size dynos per process type.",
                "limit": 1,
                "size": 2,
            },
            False,
        ),
        (
            422,
            {"id": "invalid_params", "message": "App must be deployed before dynos can be scaled."},
            False,
        ),
    ],
)
def test_422_rejections_are_retryable_only_during_release_or_preboot(
    status: int, body: dict[str, object], retryable: bool
) -> None:
    rejected = heroku.rejection(httpx.Response(status, json=body), "scaling web=2")
    assert rejected.retryable is retryable
    assert str(body["message"]) in str(rejected)


# -- over HTTP ---------------------------------------------------------------------------------


def test_read_sends_the_v3_accept_header_and_bearer_token(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    formation = heroku_adapter.read(["web", "worker"])
    assert {p: f.quantity for p, f in formation.items()} == {"web": 2, "worker": 1}
    call, dynos = fake_heroku.journal
    assert (call.method, call.path, call.status) == ("GET", "/apps/my-app/formation", 200)
    assert (dynos.method, dynos.path, dynos.status) == ("GET", "/apps/my-app/dynos", 200)
    for sent in (call, dynos):
        assert sent.headers["accept"] == ACCEPT
        assert sent.headers["authorization"] == f"Bearer {HEROKU_TOKEN}"


def test_read_of_a_process_type_the_app_lacks_is_an_error(
    heroku_adapter: heroku.Heroku,
) -> None:
    with pytest.raises(PlatformError, match="no process type clock"):
        heroku_adapter.read(["web", "clock"])


def test_scale_rereads_then_sends_one_batch_patch_with_absolute_quantities(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    heroku_adapter.scale({"web": 4, "worker": 1}, expected={"web": 2, "worker": 1})
    assert [(c.method, c.path) for c in fake_heroku.journal] == [
        ("GET", "/apps/my-app/formation"),
        ("PATCH", "/apps/my-app/formation"),
    ]
    assert fake_heroku.journal[1].body == {"updates": [{"type": "web", "quantity": 4}]}
    assert (fake_heroku.quantity("web"), fake_heroku.quantity("worker")) == (4, 1)


def test_scale_to_the_current_quantity_writes_nothing(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    heroku_adapter.scale({"web": 2}, expected={"web": 2})
    assert fake_heroku.writes() == []


def test_a_quantity_changed_by_someone_else_is_a_conflict_and_not_overwritten(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    heroku_adapter.read(["web"])
    fake_heroku.set_quantity("web", 5)
    with pytest.raises(Conflict, match="web is 5 \\(expected 2\\)"):
        heroku_adapter.scale({"web": 3}, expected={"web": 2})
    assert fake_heroku.writes() == []
    assert fake_heroku.quantity("web") == 5


def test_a_tier_limit_is_rejected_for_good(clock: FakeClock) -> None:
    with FakeHeroku(token=HEROKU_TOKEN, sizes={"web": "Basic"}, clock=clock) as fake:
        adapter = heroku.Heroku(
            heroku.parse(config.load(heroku_env(fake.url))), clock=clock, timeout=TIMEOUT
        )
        with pytest.raises(Rejected, match="Cannot run more than 1 Basic") as err:
            adapter.scale({"web": 2}, expected={"web": 1})
        adapter.close()
    assert err.value.retryable is False
    assert fake.quantity("web") == 1
    assert [c.status for c in fake.writes()] == [422]


def test_a_release_phase_or_preboot_rejection_is_retryable(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.releasing = True
    with pytest.raises(Rejected, match="preboot") as err:
        heroku_adapter.scale({"web": 3}, expected={"web": 2})
    assert err.value.retryable is True
    fake_heroku.releasing = False
    heroku_adapter.scale({"web": 3}, expected={"web": 2})
    assert fake_heroku.quantity("web") == 3


def test_429_raises_rate_limited_and_holds_back_without_calling(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku, clock: FakeClock
) -> None:
    fake_heroku.fail(429)
    with pytest.raises(RateLimited) as err:
        heroku_adapter.read(["web"])
    assert err.value.retry_after is not None and err.value.retry_after > 0
    with pytest.raises(RateLimited):
        heroku_adapter.read(["web"])
    assert len(fake_heroku.journal) == 1  # the second read never left
    clock.advance(err.value.retry_after + 0.1)
    assert heroku_adapter.read(["web"])["web"].quantity == 2


def test_an_empty_account_pool_is_a_429_from_the_fake(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.pool = 0.0
    with pytest.raises(RateLimited, match="rate limit"):
        heroku_adapter.read(["web"])
    assert fake_heroku.journal[0].reply["id"] == "rate_limit"


def test_a_low_ratelimit_remaining_serves_reads_from_the_recent_formation(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku, clock: FakeClock
) -> None:
    fake_heroku.pool = 300.0  # the account is nearly spent by other clients
    heroku_adapter.read(["web"])
    assert heroku_adapter.remaining == 299
    clock.advance(30)
    assert heroku_adapter.read(["web"])["web"].quantity == 2
    assert len(fake_heroku.journal) == 1
    clock.advance(heroku.MAX_CACHED_AGE)
    heroku_adapter.read(["web"])
    assert len(fake_heroku.journal) == 2
    heroku_adapter.scale({"web": 3}, expected={"web": 2})  # writes still go through
    assert fake_heroku.quantity("web") == 3


def test_5xx_on_a_read_is_retried(heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku) -> None:
    fake_heroku.fail(503, times=2)
    assert heroku_adapter.read(["web"])["web"].quantity == 2
    assert [c.status for c in fake_heroku.journal] == [503, 503, 200, 200]  # then the dynos


def test_persistent_5xx_on_a_read_is_a_platform_error(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.fail(500, times=10)
    with pytest.raises(PlatformError, match="500") as err:
        heroku_adapter.read(["web"])
    assert not isinstance(err.value, WriteUnknown)
    assert len(fake_heroku.journal) == 3


def test_a_timeout_after_the_patch_was_sent_is_write_unknown(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.slow(TIMEOUT * 3, method="PATCH")
    with pytest.raises(WriteUnknown, match="may or may not have applied"):
        heroku_adapter.scale({"web": 3}, expected={"web": 2})
    assert len(fake_heroku.writes()) == 1  # not re-sent
    assert heroku_adapter.read(["web"])["web"].quantity == 3  # it did apply: the re-read shows it


def test_a_dropped_connection_after_the_patch_is_write_unknown(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.drop(method="PATCH", apply=False)
    with pytest.raises(WriteUnknown):
        heroku_adapter.scale({"web": 3}, expected={"web": 2})
    assert heroku_adapter.read(["web"])["web"].quantity == 2


def test_a_dropped_connection_on_a_read_is_retried(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.drop(method="GET")
    assert heroku_adapter.read(["web"])["web"].quantity == 2
    assert [c.fault for c in fake_heroku.journal] == ["drop", None, None]  # then the dynos


def test_check_reads_without_writing(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    assert heroku_adapter.check(["web", "worker"]).startswith("heroku app my-app: web=2, worker=1")
    assert [c.method for c in fake_heroku.journal] == ["GET"]


def test_check_names_an_unknown_process_type(heroku_adapter: heroku.Heroku) -> None:
    with pytest.raises(ConfigError) as err:
        heroku_adapter.check(["web", "clock"])
    assert "clock" in err.value.problems["AUTOSCALER_PROCESSES"]


def test_the_fake_answers_404_for_an_unknown_process_type(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    response = heroku_adapter.http.request("GET", "/apps/my-app/formation/clock")
    assert response.status_code == 404
    assert response.json()["id"] == "not_found"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HEROKU_API_TOKEN": "wrong-token-123456"}, "HEROKU_API_TOKEN"),
        ({"HEROKU_APP_NAME": "other-app"}, "HEROKU_APP_NAME"),
    ],
)
def test_check_names_a_refused_token_or_unknown_app(
    fake_heroku: FakeHeroku, clock: FakeClock, env: dict[str, str], variable: str
) -> None:
    adapter = heroku.Heroku(
        heroku.parse(config.load(heroku_env(fake_heroku.url, **env))), clock=clock
    )
    with pytest.raises(ConfigError) as err:
        adapter.check(["web"])
    adapter.close()
    assert list(err.value.problems) == [variable]


def test_check_says_which_url_it_could_not_reach(clock: FakeClock) -> None:
    env = heroku_env("http://127.0.0.1:9")  # the discard port: nothing listens
    adapter = heroku.Heroku(heroku.parse(config.load(env)), clock=clock, timeout=TIMEOUT)
    with pytest.raises(
        PlatformError, match=r"cannot connect.*HEROKU_API_URL=http://127\.0\.0\.1:9"
    ):
        adapter.check(["web"])
    adapter.close()


def test_build_reads_the_settings() -> None:
    settings = config.load(heroku_env("http://127.0.0.1:1"))
    adapter = heroku.build(settings)
    assert adapter.name == "heroku"
    assert str(adapter.http._client.base_url) == "http://127.0.0.1:1"
    adapter.close()


# -- which dynos serve (ready) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "up"),
    [
        ([], {}),
        (
            [
                {"type": "web", "state": "up"},
                {"type": "web", "state": "starting"},
                {"type": "worker", "state": "crashed"},
                {"type": "run", "state": "up"},
            ],
            {"web": 1, "worker": 0, "run": 1},
        ),
    ],
)
def test_parse_dynos_counts_the_dynos_up_per_type(body: object, up: dict[str, int]) -> None:
    assert heroku.parse_dynos(body) == up


@pytest.mark.parametrize("body", [{"type": "web"}, [{"type": "web"}], [{"state": "up"}], ["x"]])
def test_parse_dynos_refuses_what_it_cannot_read(body: object) -> None:
    with pytest.raises(PlatformError):
        heroku.parse_dynos(body)


def test_starting_dynos_are_not_ready_until_they_are_up(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku, clock: FakeClock
) -> None:
    fake_heroku.dyno_boot_s = 30.0
    before = heroku_adapter.read(["web"])["web"]
    assert (before.quantity, before.ready) == (2, 2)
    heroku_adapter.scale({"web": 4}, expected={"web": 2})
    clock.advance(5)
    assert heroku_adapter.read(["web"])["web"].ready == 2  # two of four still starting
    clock.advance(26)
    assert heroku_adapter.read(["web"])["web"].ready == 4


def test_a_settled_formation_reads_the_dynos_once_a_minute_and_every_tick_while_short(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku, clock: FakeClock
) -> None:
    def dyno_reads() -> int:
        return sum(1 for c in fake_heroku.journal if c.path == "/apps/my-app/dynos")

    heroku_adapter.read(["web", "worker"])
    for _ in range(11):  # 55 s: every dyno was up and nothing changed
        clock.advance(5)
        assert heroku_adapter.read(["web", "worker"])["web"].ready == 2
    assert dyno_reads() == 1
    fake_heroku.dyno_state("web", 2, "crashed")
    clock.advance(5)
    assert heroku_adapter.read(["web", "worker"])["web"].ready == 1  # a minute on: read again
    clock.advance(5)
    heroku_adapter.read(["web", "worker"])
    assert dyno_reads() == 3  # one short of its quantity: read on every tick


def test_a_dyno_list_of_several_pages_is_followed_with_next_range(clock: FakeClock) -> None:
    formation = {"web": 90, "worker": 90, "clock": 40}  # 220 dynos: two pages of 200
    with FakeHeroku(token=HEROKU_TOKEN, formation=formation, clock=clock) as fake:
        settings = config.load(heroku_env(fake.url))
        adapter = heroku.Heroku(heroku.parse(settings), clock=clock, timeout=TIMEOUT)
        try:
            read = adapter.read(["web", "worker", "clock"])
        finally:
            adapter.close()
        assert {p: f.ready for p, f in read.items()} == formation
        first, second = (c for c in fake.journal if c.path == "/apps/my-app/dynos")
        assert (first.status, len(first.reply)) == (206, 200)
        assert second.headers["range"] == f"id ]{first.reply[-1]['id']}..; max=200"
        assert (second.status, len(second.reply)) == (200, 20)


def test_when_the_dynos_cannot_be_read_ready_is_unknown_not_zero(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.fail(500, path="/apps/my-app/dynos", times=10)
    read = heroku_adapter.read(["web"])
    assert (read["web"].quantity, read["web"].ready) == (2, None)


def test_a_short_budget_reads_the_formation_and_leaves_the_dynos_unknown(
    heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    fake_heroku.pool = 300.0  # the account is nearly spent by other clients
    assert heroku_adapter.read(["web"])["web"].ready is None
    assert [c.path for c in fake_heroku.journal] == ["/apps/my-app/formation"]
