"""The OpenAPI document: made from the registered endpoints and the handlers' own models."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from aiohttp.test_utils import TestClient

from edgeorder.ordercore import Settings, create_app
from edgeorder.ordercore.checkout import CheckoutIn
from edgeorder.ordercore.openapi import openapi_document
from tests.ordercore.conftest import AUTH, checkout_body

Client = TestClient[Any, Any]


def registered_routes(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, path, op) for path, ops in doc["paths"].items() for m, op in ops.items()]


async def test_every_route_is_documented_and_nothing_else(
    client: Client, core_settings: Settings
) -> None:
    resp = await client.get("/api/openapi.json")  # no token needed
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m, path) for m, path, _ in operations(doc)}
    routes = registered_routes(core_settings)
    assert len(routes) > 20
    assert routes == documented
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


def test_every_operation_documents_every_status_it_can_answer() -> None:
    doc = openapi_document()
    for method, path, op in operations(doc):
        statuses = set(op["responses"])
        where = f"{method} {path}"
        assert "default" not in statuses, where
        assert statuses & {"200", "201", "204"}, where
        if op.get("security") != []:
            assert "401" in statuses, where
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], where
        if "{id}" in path:
            assert "404" in statuses, where
        if "requestBody" in op:
            assert {"400", "413"} <= statuses, where
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in statuses, where
        if len(op.get("x-roles", ["admin", "app", "customer", "merchant"])) < 4:
            assert "403" in statuses, where


def test_the_constraints_the_server_enforces_are_in_the_document() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    checkout = doc["paths"]["/api/checkout"]["post"]
    [key] = [p for p in checkout["parameters"] if p["name"] == "Idempotency-Key"]
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    assert key["schema"]["pattern"] == "^[!-~]([ -~]*[!-~])?$"
    item = schemas["ItemIn"]
    assert {tuple(branch["required"]) for branch in item["anyOf"]} == {("Sku",), ("SkuId",)}
    assert item["properties"]["Quantity"]["type"] == "integer"
    webhook = schemas["WebhookIn"]["properties"]
    assert webhook["Url"]["pattern"].startswith("^https?://")
    assert webhook["Secret"]["anyOf"][0]["minLength"] == 1
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/order/sent"]["get"]["parameters"]}
    assert params["id"]["minimum"] == 1
    assert params["pageIndex"]["maximum"] == 10**9
    assert "pattern" in params["startDate"]
    assert params["order"]["enum"] == ["asc", "desc"]
    batch = schemas["BatchOut"]["properties"]["Results"]["items"]
    assert batch["discriminator"]["propertyName"] == "Status"
    assert {r["$ref"].rsplit("/", 1)[1] for r in batch["oneOf"]} == {"BatchCreated", "BatchFailed"}


def test_every_reference_resolves() -> None:
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
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_the_checkout_example_is_a_valid_body() -> None:
    [example] = openapi_document()["components"]["schemas"]["CheckoutIn"]["examples"]
    CheckoutIn.model_validate(example)


def _validator(doc: dict[str, Any], method: str, path: str, status: int) -> Any:
    content = doc["paths"][path][method]["responses"][str(status)]["content"]
    schema = {**content["application/json"]["schema"], "components": doc["components"]}
    return jsonschema_rs.validator_for(schema)


async def test_real_answers_match_their_documented_schemas(client: Client) -> None:
    """A lifecycle walked over HTTP: each answer validates against its operation's schema."""
    doc = openapi_document()

    async def check(method: str, path: str, template: str, body: Any = None) -> Any:
        resp = await client.request(method, path, json=body, headers=AUTH)
        data = await resp.json()
        errors = list(_validator(doc, method, template, resp.status).iter_errors(data))
        assert not errors, (method, path, resp.status, [str(e) for e in errors])
        return data

    created = await check("post", "/api/checkout", "/api/checkout", checkout_body())
    oid = created["Orders"][0]["Id"]
    line = created["Orders"][0]["OrderItems"][0]["Id"]
    await check("put", f"/api/order/{oid}", "/api/order/{id}", {"OwnerNote": "n"})
    edit = {"Lines": [{"Id": line, "Quantity": 1}], "Add": [{"Sku": "TEA-250G", "Quantity": 1}]}
    await check("post", f"/api/order/{oid}/edit", "/api/order/{id}/edit", edit)
    await check("post", f"/api/order/{oid}/capture", "/api/order/{id}/capture")
    await check("post", f"/api/order/{oid}/cancel", "/api/order/{id}/cancel")
    await check("post", f"/api/order/{oid}/ship", "/api/order/{id}/ship")  # 409
    for suffix in ("", "/values", "/edits"):
        await check(
            "get", f"/api/order/{oid}/history{suffix}", f"/api/order/{{id}}/history{suffix}"
        )
    await check("get", "/api/order/sent/?state=cancelled", "/api/order/sent/")
    await check("get", f"/api/order/received/{oid}", "/api/order/received/{id}")
    await check("get", "/api/order/received/999", "/api/order/received/{id}")  # 404
    batch = {
        "Checkouts": [
            {"Checkout": checkout_body()},
            {"Checkout": {}},
            {"Checkout": {**checkout_body(), "Items": [{"Sku": "NOPE", "Quantity": 1}]}},
        ]
    }
    await check("post", "/api/checkouts", "/api/checkouts", batch)
    await check("post", "/api/checkout", "/api/checkout", {"Items": []})  # 400
    await check("get", "/api/sku", "/api/sku")
    hook = {"Url": "http://127.0.0.1:9/hook", "Events": ["*"]}
    await check("post", "/api/webhooks", "/api/webhooks", hook)
    await check("get", "/api/webhooks", "/api/webhooks")
    resp = await client.get("/api/sku")
    data = await resp.json()
    assert not list(_validator(doc, "get", "/api/sku", 401).iter_errors(data))
