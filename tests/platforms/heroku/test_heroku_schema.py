"""The fake Heroku API against Heroku's own published schema (the copy in ``tests/data``).

Drive the adapter through the fake, then validate every request body the adapter sent and every
response body the fake answered against the matching link of the ``formation`` definition.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from autoscaler.platforms import heroku
from tests.platforms.fake_heroku import FakeHeroku

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "data" / "heroku-platform-api.schema.json"
BASE = "http://api.heroku.com/schema"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())  # type: ignore[no-any-return]


def _link(schema: dict[str, Any], method: str, path: str) -> tuple[dict[str, Any], str]:
    """The ``formation`` or ``dyno`` link that serves this request, and its pointer."""
    for kind in ("formation", "dyno"):
        for i, link in enumerate(schema["definitions"][kind]["links"]):
            pattern = "^" + re.sub(r"\{\([^)]*\)\}", "[^/]+", link["href"]) + "$"
            if link["method"] == method and re.match(pattern, path):
                return link, f"#/definitions/{kind}/links/{i}"
    raise AssertionError(f"no formation or dyno link for {method} {path}")


def _validator(schema: dict[str, Any], pointer: str) -> Draft4Validator:
    registry: Registry[Any] = Registry().with_resource(BASE, DRAFT4.create_resource(schema))
    return Draft4Validator({"$ref": BASE + pointer}, registry=registry)


def _validate_journal(fake: FakeHeroku, schema: dict[str, Any]) -> int:
    checked = 0
    for call in fake.journal:
        link, pointer = _link(schema, call.method, call.path.split("?")[0])
        if "schema" in link:
            _validator(schema, pointer + "/schema").validate(call.body)
            checked += 1
        if call.status in (200, 206):
            _validator(schema, pointer + "/targetSchema").validate(call.reply)
            checked += 1
    return checked


def test_the_adapters_requests_and_the_fakes_answers_follow_the_schema(
    schema: dict[str, Any], heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    heroku_adapter.read(["web", "worker"])
    heroku_adapter.scale({"web": 4, "worker": 0}, expected={"web": 2, "worker": 1})
    heroku_adapter.http.request("GET", "/apps/my-app/formation/web")
    heroku_adapter.http.request("PATCH", "/apps/my-app/formation/worker", json={"quantity": 2})
    assert _validate_journal(fake_heroku, schema) == 8  # 6 answers and 2 request bodies
    assert {c.path for c in fake_heroku.journal} >= {"/apps/my-app/formation/worker"}


def test_the_fakes_formation_objects_carry_exactly_the_schemas_properties(
    schema: dict[str, Any], heroku_adapter: heroku.Heroku, fake_heroku: FakeHeroku
) -> None:
    heroku_adapter.read(["web"])
    declared = set(schema["definitions"]["formation"]["properties"])
    for item in fake_heroku.journal[0].reply:
        assert set(item) == declared  # the schema marks formation strictProperties


@pytest.mark.parametrize(
    "body",
    [
        {"updates": [{"type": "web", "quantity": "3"}]},
        {"updates": [{"type": "web", "quantity": 3, "colour": "red"}]},
        {"updates": [{"quantity": 3}]},
        {"changes": [{"type": "web", "quantity": 3}]},
    ],
)
def test_the_schema_check_would_catch_a_malformed_batch_update(
    schema: dict[str, Any], body: dict[str, Any]
) -> None:
    _, pointer = _link(schema, "PATCH", "/apps/my-app/formation")
    assert not _validator(schema, pointer + "/schema").is_valid(body)


def test_the_schema_check_would_catch_a_malformed_formation_answer(
    schema: dict[str, Any],
) -> None:
    _, pointer = _link(schema, "GET", "/apps/my-app/formation")
    validator = _validator(schema, pointer + "/targetSchema")
    assert validator.is_valid([{"type": "web", "quantity": 2}])
    assert not validator.is_valid([{"type": "web", "quantity": "2"}])
    assert not validator.is_valid({"type": "web", "quantity": 2})
