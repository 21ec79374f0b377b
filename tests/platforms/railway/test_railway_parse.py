"""Railway's pure layer: configuration, region maps, spreading, patches, errors, by tables."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.config import load
from autoscaler.platforms import railway
from autoscaler.ports import ConfigError, PlatformError, RateLimited, Rejected


def instance(deploy: Any = None, **fields: Any) -> dict[str, Any]:
    meta = None if deploy is None else {"serviceManifest": {"deploy": deploy}}
    return {"latestDeployment": {"id": "d1", "status": "SUCCESS", "meta": meta}, **fields}


@pytest.mark.parametrize(
    ("given", "regions"),
    [
        # the CLI's shape (its own test data): replicas per region
        (instance({"multiRegionConfig": {"europe-west4-drams3a": {"numReplicas": 2},
                                         "us-east4-eqdc4a": {"numReplicas": 1}}}),
         {"europe-west4-drams3a": 2, "us-east4-eqdc4a": 1}),
        # a removed region is null
        (instance({"multiRegionConfig": {"a": {"numReplicas": 3}, "b": None}}), {"a": 3}),
        # old deployments: region + numReplicas, numReplicas defaulting to 1 as in the CLI
        (instance({"region": "us-west2", "numReplicas": 3}), {"us-west2": 3}),
        (instance({"region": "us-west2"}), {"us-west2": 1}),
        # no deployment meta: the instance's own fields
        (instance(None, region="us-west2", numReplicas=2), {"us-west2": 2}),
        (instance(None, numReplicas=4), {"": 4}),
    ],
)  # fmt: skip
def test_regions_are_read_as_the_cli_reads_them(given: Any, regions: dict[str, int]) -> None:
    assert railway.regions_of(given) == regions


def test_an_instance_without_any_replica_count_is_a_platform_error() -> None:
    with pytest.raises(PlatformError):
        railway.regions_of(instance(None))


@pytest.mark.parametrize(
    ("regions", "target", "result"),
    [
        ({"a": 2}, 5, {"a": 5}),
        ({"a": 2}, 1, {"a": 1}),
        ({"a": 2}, 2, {"a": 2}),
        # additions go to the largest region (ties: by name); removals come from it
        ({"a": 1, "b": 3}, 6, {"a": 1, "b": 5}),
        ({"a": 2, "b": 2}, 5, {"a": 3, "b": 2}),
        ({"a": 1, "b": 3}, 2, {"a": 1, "b": 1}),
        # a region brought to zero is removed (null), as the dashboard and CLI do
        ({"a": 1, "b": 1}, 1, {"a": None, "b": 1}),
    ],
)
def test_spread_changes_the_largest_region(
    regions: dict[str, int], target: int, result: dict[str, int | None]
) -> None:
    assert railway.spread(regions, target) == result


@pytest.mark.parametrize(("regions", "target"), [({"": 3}, 4), ({}, 1), ({"a": 1}, 0)])
def test_spread_refuses_without_a_region_or_to_zero(regions: dict[str, int], target: int) -> None:
    with pytest.raises(ValueError):
        railway.spread(regions, target)


def test_the_patch_has_the_clis_shape() -> None:
    assert railway.patch_for({"svc_123": {"europe-west4-drams3a": 2, "us-east4-eqdc4a": None}}) == {
        "services": {"svc_123": {"deploy": {"multiRegionConfig": {
            "europe-west4-drams3a": {"numReplicas": 2}, "us-east4-eqdc4a": None}}}}
    }  # fmt: skip


def test_the_read_query_declares_one_variable_per_aliased_service() -> None:
    query = railway.read_query(2)
    assert query.startswith("query autoscalerRead($environmentId: String!, $s0: String!, $s1: ")
    assert "s1: serviceInstance(serviceId: $s1, environmentId: $environmentId)" in query
    assert query.count("latestDeployment { id status createdAt meta }") == 2


@pytest.mark.parametrize(
    ("message", "kind", "retryable"),
    [
        ("Not Authorized", railway.AuthRejected, False),
        ("Project Token not found", railway.AuthRejected, False),
        ("ServiceInstance not found", Rejected, False),
        ("Rate limit exceeded", RateLimited, None),
        ("Problem processing request", Rejected, True),
    ],
)
def test_graphql_errors_are_typed(message: str, kind: type, retryable: bool | None) -> None:
    error = railway.classify([{"message": message}], "read")
    assert type(error) is kind
    if retryable is not None:
        assert isinstance(error, Rejected) and error.retryable is retryable


def test_formation_sums_regions_and_flags_a_rollout() -> None:
    given = instance({"multiRegionConfig": {"a": {"numReplicas": 2}, "b": {"numReplicas": 1}}})
    given["latestDeployment"].update(status="DEPLOYING", createdAt="2026-01-02T03:04:05Z")
    form = railway.formation_of(given)
    assert (form.quantity, form.deploying, form.updated_at) == (3, True, 1767323045.0)


BASE = {
    "AUTOSCALER_PLATFORM": "railway",
    "AUTOSCALER_PROCESSES": "web,worker",
    "AUTOSCALER_WORKER_SOURCE": "rq",
    "RAILWAY_API_TOKEN": "tok-123456",
    "RAILWAY_ENVIRONMENT_ID": "env-1",
    "AUTOSCALER_WEB_RAILWAY_SERVICE_ID": "svc-1",
    "AUTOSCALER_WORKER_RAILWAY_SERVICE_ID": "svc-2",
}


@pytest.mark.parametrize(
    ("drop", "extra", "bad"),
    [
        (("RAILWAY_API_TOKEN",), {}, {"RAILWAY_API_TOKEN"}),
        (("RAILWAY_ENVIRONMENT_ID",), {}, {"RAILWAY_ENVIRONMENT_ID"}),
        (("AUTOSCALER_WORKER_RAILWAY_SERVICE_ID",), {}, {"AUTOSCALER_WORKER_RAILWAY_SERVICE_ID"}),
        ((), {"AUTOSCALER_WORKER_MIN": "0"}, {"AUTOSCALER_WORKER_MIN"}),
    ],
)
def test_missing_variables_are_named(
    drop: tuple[str, ...], extra: dict[str, str], bad: set[str]
) -> None:
    env = {k: v for k, v in BASE.items() if k not in drop} | extra
    with pytest.raises(ConfigError) as info:
        railway.build(load(env))
    assert set(info.value.problems) == bad


def test_a_complete_configuration_maps_processes_to_services() -> None:
    config = railway.parse(load(BASE))
    assert dict(config.services) == {"web": "svc-1", "worker": "svc-2"}
    assert config.api_url == "https://backboard.railway.com/graphql/v2"
