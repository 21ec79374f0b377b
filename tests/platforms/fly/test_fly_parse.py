"""Fly's pure layer: configuration, machine parsing, formation and scale plans, by tables."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.config import load
from autoscaler.platforms import fly
from autoscaler.platforms.fly import Machine, Plan
from autoscaler.ports import ConfigError, PlatformError, Rejected


def machine(mid: str, state: str, group: str = "web", *, host_ok: bool = True) -> Machine:
    return Machine(mid, state, group, "iad", None, host_ok, {"image": "img"}, "img@sha256:1")


FLEET = [
    machine("a1", "started"),
    machine("a2", "started"),
    machine("a3", "stopped"),
    machine("a4", "suspended"),
    machine("a5", "created"),
    machine("a0", "stopped"),
    machine("w1", "started", "worker"),
    machine("w2", "stopped", "worker", host_ok=False),
]


@pytest.mark.parametrize(
    ("machines", "group", "target", "clone_up_to", "expected"),
    [
        (FLEET, "web", 2, 0, Plan()),
        # up: stopped machines first (lowest id first), then suspended, then never started
        (FLEET, "web", 3, 0, Plan(start=("a0",))),
        (FLEET, "web", 4, 0, Plan(start=("a0", "a3"))),
        (FLEET, "web", 6, 0, Plan(start=("a0", "a3", "a4", "a5"))),
        # not enough machines and no cloning: the shortfall is reported, nothing invented
        (FLEET, "web", 8, 0, Plan(start=("a0", "a3", "a4", "a5"), shortfall=2)),
        # cloning fills the gap only up to the group's ceiling
        (FLEET, "web", 8, 7, Plan(start=("a0", "a3", "a4", "a5"), clones=1, shortfall=1)),
        (FLEET, "web", 8, 10, Plan(start=("a0", "a3", "a4", "a5"), clones=2)),
        # down: the highest ids stop first; to zero stops them all
        (FLEET, "web", 1, 0, Plan(stop=("a2",))),
        (FLEET, "web", 0, 0, Plan(stop=("a2", "a1"))),
        # a machine on an unreachable host is neither counted nor used
        (FLEET, "worker", 2, 0, Plan(shortfall=1)),
        (FLEET, "worker", 0, 0, Plan(stop=("w1",))),
        # a group with no machine at all cannot be cloned from
        (FLEET, "jobs", 1, 5, Plan(shortfall=1)),
        # a booting machine is stopped before a fully started one
        ([machine("b1", "started"), machine("b2", "starting")], "web", 1, 0, Plan(stop=("b2",))),
    ],
)
def test_plan_takes_a_group_to_its_target_with_the_fewest_and_safest_calls(
    machines: list[Machine], group: str, target: int, clone_up_to: int, expected: Plan
) -> None:
    assert fly.plan(machines, group, target, clone_up_to=clone_up_to) == expected


@pytest.mark.parametrize(
    ("states", "quantity", "deploying"),
    [
        (["started", "started", "stopped"], 2, False),
        (["starting", "stopped", "suspended", "created"], 1, False),
        (["started", "replacing"], 1, True),
        (["destroyed", "destroying", "stopped"], 0, False),
        ([], 0, False),
    ],
)
def test_formation_counts_started_and_starting_machines(
    states: list[str], quantity: int, deploying: bool
) -> None:
    machines = [machine(f"m{i}", s) for i, s in enumerate(states)]
    form = fly.formation_of(machines, "web")
    assert (form.quantity, form.deploying) == (quantity, deploying)


def _api_machine(mid: str, metadata: dict[str, Any], **extra: Any) -> dict[str, Any]:
    config = {"image": "registry.fly.io/demo:v1", "metadata": metadata}
    return {"id": mid, "state": "started", "region": "cdg", "config": config, **extra}


def test_machines_parse_groups_with_legacy_key_and_default_and_pin_the_image() -> None:
    body = [
        _api_machine("m1", {"fly_process_group": "web"}, updated_at="2026-01-02T03:04:05Z",
                     image_ref={"registry": "registry.fly.io", "repository": "demo",
                                "tag": "v1", "digest": "sha256:abc"}),
        _api_machine("m2", {"process_group": "worker"}, host_status="unreachable"),
        _api_machine("m3", {}),
    ]  # fmt: skip
    m1, m2, m3 = fly.parse_machines(body)
    assert (m1.group, m2.group, m3.group) == ("web", "worker", "")  # fly-go's ProcessGroup()
    assert m1.image == "registry.fly.io/demo:v1@sha256:abc"
    assert m3.image == "registry.fly.io/demo:v1"
    assert m1.updated_at == 1767323045.0
    assert m2.host_ok is False and m1.host_ok is True


@pytest.mark.parametrize("body", [{"machines": []}, [{"state": "started"}], "nope", None])
def test_a_machine_list_of_the_wrong_shape_is_a_platform_error(body: Any) -> None:
    with pytest.raises(PlatformError, match="fly"):
        fly.parse_machines(body)


def test_a_clone_copies_the_first_machine_with_its_image_pinned_and_its_region() -> None:
    machines = fly.parse_machines([
        _api_machine("m2", {"fly_process_group": "web"}),
        _api_machine("m1", {"fly_process_group": "web"},
                     image_ref={"repository": "demo", "digest": "sha256:feed"}),
    ])  # fmt: skip
    body = fly.clone_request(machines, "web")
    assert body["region"] == "cdg"
    assert body["config"]["image"] == "registry.fly.io/demo@sha256:feed"
    assert body["config"]["metadata"] == {"fly_process_group": "web"}


@pytest.mark.parametrize(
    ("token", "header"),
    [
        ("abc123token", "Bearer abc123token"),
        ("FlyV1 fm2_abc,fm2_def", "FlyV1 fm2_abc,fm2_def"),
        ("Bearer abc123token", "Bearer abc123token"),
        ("  abc123token\n", "Bearer abc123token"),
    ],
)
def test_the_authorization_header_keeps_a_token_scheme_or_uses_bearer(
    token: str, header: str
) -> None:
    assert fly.authorization(token) == header


def test_every_piece_of_a_macaroon_token_is_a_secret() -> None:
    assert set(fly.secrets_of("FlyV1 fm2_aaaa,fm2_bbbb")) >= {"fm2_aaaa", "fm2_bbbb"}


BASE = {"AUTOSCALER_PLATFORM": "fly", "FLY_API_TOKEN": "tok-123456", "FLY_APP_NAME": "demo"}


@pytest.mark.parametrize(
    ("drop", "extra", "bad"),
    [
        (("FLY_API_TOKEN",), {}, {"FLY_API_TOKEN"}),
        (("FLY_APP_NAME",), {}, {"FLY_APP_NAME"}),
        (("FLY_API_TOKEN", "FLY_APP_NAME"), {}, {"FLY_API_TOKEN", "FLY_APP_NAME"}),
        ((), {"AUTOSCALER_FLY_CLONE": "maybe"}, {"AUTOSCALER_FLY_CLONE"}),
    ],
)
def test_missing_or_bad_variables_are_named(
    drop: tuple[str, ...], extra: dict[str, str], bad: set[str]
) -> None:
    env = {k: v for k, v in BASE.items() if k not in drop} | extra
    with pytest.raises(ConfigError) as info:
        fly.build(load(env))
    assert set(info.value.problems) == bad


@pytest.mark.parametrize(("value", "clone"), [(None, False), ("true", True), ("off", False)])
def test_cloning_is_off_unless_asked_for(value: str | None, clone: bool) -> None:
    env = BASE | ({"AUTOSCALER_FLY_CLONE": value} if value else {})
    assert fly.parse(load(env)).clone is clone


def test_standbys_and_volumes_in_the_pure_layer() -> None:
    machines = fly.parse_machines([
        _api_machine("m1", {"fly_process_group": "web"}),
        _api_machine("m2", {"fly_process_group": "web"}, state="stopped"),
        {**_api_machine("m3", {"fly_process_group": "web"}, state="stopped"),
         "config": {"image": "i", "metadata": {"fly_process_group": "web"}, "standbys": ["m1"]}},
        {**_api_machine("m4", {"fly_process_group": "web"}, state="stopped"),
         "config": {"image": "i", "metadata": {"fly_process_group": "web"},
                    "env": {"FLY_STANDBY_FOR": "m1"}}},
    ])  # fmt: skip
    assert [m.standby for m in machines] == [False, False, True, True]
    assert [m.id for m in fly.in_group(machines, "web")] == ["m1", "m2"]
    assert fly.plan(machines, "web", 4, clone_up_to=0) == Plan(start=("m2",), shortfall=2)
    mounted = [
        Machine("v1", "started", "db", "iad", None, True, {"image": "i", "mounts": [{}]}, "i")
    ]
    assert fly.plan(mounted, "db", 3, clone_up_to=5) == Plan(shortfall=2)
    with pytest.raises(Rejected, match="volume"):
        fly.clone_request(mounted, "db")
