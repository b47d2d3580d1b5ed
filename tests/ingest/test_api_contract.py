"""ingest's REST API says what it enforces: the document's references resolve, every answer is
listed, and the server reads a body the way the document's JSON Schema does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from edgeorder.ingest.web.api import openapi_document
from tests.web.support import api_alone

Client = TestClient[web.Request, web.Application]
MAPPING = {"single": {"type": "reorder", "sku": "COFFEE-1KG", "quantity": 1}}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    """The API routes alone (no auth middleware: these tests are about the contract)."""
    async with api_alone(tmp_path) as client:
        yield client


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves_and_every_answer_is_listed() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            statuses = set(op["responses"])
            where = f"{method} {path}"
            assert "401" in statuses, where
            assert statuses & {"200", "201", "204"}, where
            assert "default" not in statuses, where
            if "requestBody" in op:
                assert {"413", "422", "403"} <= statuses, where
            if "{" in path:
                assert "404" in statuses, where
    # the device schemas point at definitions that exist (ButtonMapping and its actions)
    mapping = schemas["DeviceIn"]["properties"]["mapping"]["$ref"]
    assert mapping.removeprefix("#/components/schemas/") in schemas
    assert "type" in schemas["ReorderAction"]["required"]  # the union's tag


async def test_a_body_is_read_as_its_json_schema_reads_it(api: Client) -> None:
    for bad in (
        {"cancel_window_s": "300"},
        {"allow_parallel": 1},
        {"mapping": {"single": {"type": "reorder", "sku": "X", "quantity": "1"}}},
        {"mapping": {"single": {"sku": "X"}}},  # no tag: which action is it?
    ):
        resp = await api.post("/api/devices", json={"device_id": "c-01", "mapping": MAPPING, **bad})
        assert resp.status == 422, bad
    whole = {"single": {"type": "reorder", "sku": "X", "quantity": 2.0}}
    resp = await api.post(
        "/api/devices",
        json={"device_id": "c-01", "mapping": whole, "cancel_window_s": 60.0},
    )
    assert resp.status == 201, await resp.text()
    device = (await resp.json())["device"]
    assert (device["cancel_window_s"], device["mapping"]["single"]["quantity"]) == (60, 2)
    resp = await api.patch("/api/devices/c-01", json={"enabled": 0})
    assert resp.status == 422
    resp = await api.post("/api/devices", data=b"\xff{")
    assert resp.status == 422


async def test_aiohttps_own_errors_under_api_are_json(api: Client) -> None:
    resp = await api.get("/api/nothing-here")
    assert (resp.status, (await resp.json())["Error"]) == (404, "not_found")
    resp = await api.put("/api/devices")
    assert resp.status == 405
    assert (await resp.json())["Error"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]
    for path in ("/api/devices/bad%20id", "/api/events/x/not-a-ulid", "/api/buffer/0/retry"):
        resp = await (api.post(path) if path.endswith("retry") else api.get(path))
        assert (resp.status, (await resp.json())["Error"]) == (404, "not_found"), path
    resp = await api.get("/api/events?limit=ten")
    body = await resp.json()
    assert (resp.status, body["Fields"][0]["Field"]) == (400, "limit")
    resp = await api.get("/api/events?limit=-5")  # clamped, as always
    assert resp.status == 200
