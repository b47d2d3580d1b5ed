"""The OpenAPI document lists exactly the registered routes."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from edgeorder.ordercore import Settings, create_app
from edgeorder.ordercore.openapi import openapi_document


def registered_routes(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


async def test_every_route_is_documented_and_nothing_else(
    client: TestClient[Any, Any], core_settings: Settings
) -> None:
    resp = await client.get("/api/openapi.json")  # no token needed
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    documented = {(m, path) for path, ops in doc["paths"].items() for m in ops}
    routes = registered_routes(core_settings)
    assert len(routes) > 15
    assert routes == documented
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["summary"], path
            assert set(op["responses"]) & {"200", "201", "204"}, path


def test_schema_references_resolve() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
