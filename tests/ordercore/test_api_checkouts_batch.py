"""POST /api/checkouts through a real HTTP server: per-item answers equal POST /api/checkout's."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from edgeorder.ordercore.core import CORE
from edgeorder.ordercore.routes_orders import MAX_BATCH
from tests.ordercore.conftest import AUTH, checkout, checkout_body

Client = TestClient[Any, Any]
KEY = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"


def item(body: dict[str, Any] | None = None, key: object = None) -> dict[str, Any]:
    return {"IdempotencyKey": key, "Checkout": body or checkout_body()}


async def batch(client: Client, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST a batch that must be answered 200; its Results."""
    resp = await client.post("/api/checkouts", json={"Checkouts": items}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    results: list[dict[str, Any]] = (await resp.json())["Results"]
    assert len(results) == len(items)
    return results


async def order_count(client: Client) -> int:
    resp = await client.get("/api/order/sent", headers=AUTH)
    total: int = (await resp.json())["Total"]
    return total


async def test_mixed_batch_answers_each_item_in_request_order(client: Client) -> None:
    tea = checkout_body(Items=[{"Sku": "TEA-250G", "Quantity": 1}], Device={"Id": "kitchen-02"})
    results = await batch(
        client,
        [
            item(key="k-ok"),
            item(checkout_body(Items=[{"Sku": "NOPE", "Quantity": 1}])),
            item(key="x" * 300),
            item(tea),
            item(key=42),  # a wrong type is that item's 400 too
            item({"Items": []}),  # a body that breaks the schema: that item's 400
        ],
    )
    assert [r["Status"] for r in results] == [201, 422, 400, 201, 400, 400]
    assert not any(r["Replayed"] for r in results)
    assert results[1]["Body"]["Error"] == "unprocessable"
    assert results[1]["Body"]["Fields"] == [
        {"Field": "Items[0].Sku", "Reason": "unknown SKU 'NOPE'"}
    ]
    assert results[2]["Body"]["Error"] == results[4]["Body"]["Error"] == "bad_request"
    assert results[4]["Body"]["Fields"][0]["Field"] == "IdempotencyKey"
    assert results[5]["Body"]["Error"] == "validation_error"
    assert results[0]["Body"]["Orders"][0]["Amount"] == 17980
    assert results[3]["Body"]["Orders"][0]["Amount"] == 2450
    assert results[0]["Body"]["CheckoutId"] != results[3]["Body"]["CheckoutId"]
    assert await order_count(client) == 2
    # the orders really exist, with the device of their own item
    for result, device in ((results[0], "demo-01"), (results[3], "kitchen-02")):
        [order] = result["Body"]["Orders"]
        resp = await client.get(f"/api/order/received/{order['Id']}", headers=AUTH)
        stored = await resp.json()
        assert stored == order
        assert stored["Device"]["Id"] == device


async def test_item_bodies_are_the_single_endpoints_bytes(client: Client) -> None:
    resp = await client.post("/api/checkouts", json={"Checkouts": [item(key=KEY)]}, headers=AUTH)
    raw = await resp.text()
    single = await client.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": KEY}
    )
    assert single.headers["Idempotent-Replayed"] == "true"
    body = await single.text()
    assert raw == '{"Results":[{"Status":201,"Replayed":false,"Body":' + body + "}]}"


async def test_batch_replays_a_single_checkout_and_the_other_way_round(client: Client) -> None:
    first = await checkout(client, checkout_body(), **{"Idempotency-Key": "single-first"})
    [replayed] = await batch(client, [item(key="single-first")])
    assert replayed == {"Status": 201, "Replayed": True, "Body": first}

    [created] = await batch(client, [item(key="batch-first")])
    assert created["Status"] == 201
    assert created["Replayed"] is False
    resp = await client.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": "batch-first"}
    )
    assert resp.status == 201
    assert resp.headers["Idempotent-Replayed"] == "true"
    assert await resp.json() == created["Body"]
    assert await order_count(client) == 2


async def test_same_key_with_another_body_is_a_conflict(client: Client) -> None:
    await checkout(client, checkout_body(), **{"Idempotency-Key": KEY})
    other = checkout_body(Items=[{"Sku": "TEA-250G", "Quantity": 1}])
    invalid = checkout_body(Items=[{"Sku": "NOPE", "Quantity": 1}])
    results = await batch(client, [item(other, KEY), item(invalid, KEY), item(key=KEY)])
    assert [(r["Status"], r["Body"].get("Error"), r["Replayed"]) for r in results] == [
        (422, "idempotency_conflict", False),
        (422, "idempotency_conflict", False),  # replay check first, as the single endpoint
        (201, None, True),
    ]
    assert await order_count(client) == 1


async def test_replays_even_if_the_catalog_no_longer_validates_the_body(client: Client) -> None:
    body = checkout_body(Items=[{"Sku": "COFFEE-1KG", "Quantity": 1}])
    [created] = await batch(client, [item(body, "before-change")])
    # the catalog changes: the same body would now fail validation
    assert client.app is not None
    client.app[CORE].catalog = type(client.app[CORE].catalog)()
    [again] = await batch(client, [item(body, "before-change")])
    assert again == {"Status": 201, "Replayed": True, "Body": created["Body"]}
    [fresh] = await batch(client, [item(body, "after-change")])
    assert fresh["Status"] == 422


async def test_same_key_twice_in_one_batch(client: Client) -> None:
    other = checkout_body(Items=[{"Sku": "TEA-250G", "Quantity": 1}])
    invalid = checkout_body(Items=[{"Sku": "NOPE", "Quantity": 1}])
    results = await batch(
        client,
        [item(key="twice"), item(key="twice"), item(other, "twice"), item(invalid, "twice")],
    )
    assert [(r["Status"], r["Replayed"]) for r in results] == [
        (201, False),
        (201, True),
        (422, False),
        (422, False),
    ]
    assert results[1]["Body"] == results[0]["Body"]
    assert results[2]["Body"]["Error"] == results[3]["Body"]["Error"] == "idempotency_conflict"
    assert await order_count(client) == 1


async def test_items_without_a_key_each_make_an_order_in_few_group_commits(
    client: Client,
) -> None:
    assert client.app is not None
    writer = client.app[CORE].writer
    commits = writer.commits
    results = await batch(client, [item() for _ in range(MAX_BATCH)])
    assert {r["Status"] for r in results} == {201}
    ids = [r["Body"]["Orders"][0]["Id"] for r in results]
    assert ids == sorted(ids)
    assert len(set(ids)) == MAX_BATCH
    assert await order_count(client) == MAX_BATCH
    # submitted together: one group commit (a sequential loop would take MAX_BATCH commits)
    assert writer.commits - commits < MAX_BATCH // 2


async def test_bad_envelopes_fail_the_whole_request_and_write_nothing(client: Client) -> None:
    too_many = [item(key=f"k-{i}") for i in range(MAX_BATCH + 1)]
    cases: list[tuple[Any, int, set[str]]] = [
        ({"Checkouts": []}, 400, {"Checkouts"}),
        ({"Checkouts": too_many}, 400, {"Checkouts"}),
        ({"Checkouts": item()}, 400, {"Checkouts"}),
        ({}, 400, {"Checkouts"}),
        ({"Checkouts": [item(), "nope"]}, 400, {"Checkouts[1]"}),
        ({"Checkouts": [item(), {"IdempotencyKey": "k"}]}, 400, {"Checkouts[1].Checkout"}),
        (
            {"Checkouts": [item(), item(), item(), {"Checkout": [1]}]},
            400,
            {"Checkouts[3].Checkout"},
        ),
    ]
    for body, status, fields in cases:
        resp = await client.post("/api/checkouts", json=body, headers=AUTH)
        assert resp.status == status, body
        err = await resp.json()
        assert err["Error"] == "validation_error"
        assert {f["Field"] for f in err["Fields"]} == fields
    for raw in (b"[1, 2]", b"{not json", b""):
        resp = await client.post("/api/checkouts", data=raw, headers=AUTH)
        assert resp.status == 400
        assert (await resp.json())["Error"] == "malformed_json"
    assert await order_count(client) == 0
    # not even the keys: a later single call with one of them creates a new order
    resp = await client.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": "k-0"}
    )
    assert resp.status == 201
    assert "Idempotent-Replayed" not in resp.headers


async def test_auth_is_required(client: Client) -> None:
    body = json.dumps({"Checkouts": [item()]})
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        resp = await client.post("/api/checkouts", data=body, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["Error"] == "unauthorized"
    assert await order_count(client) == 0
