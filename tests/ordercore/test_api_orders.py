"""Order queries, lifecycle actions and history through a real HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from tests.ordercore.conftest import AUTH, StartCore, checkout, checkout_body

Client = TestClient[Any, Any]


async def post(client: Client, path: str, body: Any = None) -> tuple[int, Any]:
    resp = await client.post(path, json=body, headers=AUTH)
    return resp.status, await resp.json()


async def get(client: Client, path: str) -> tuple[int, Any]:
    resp = await client.get(path, headers=AUTH)
    return resp.status, await resp.json()


async def new_order(client: Client, **overrides: Any) -> int:
    order_id: int = (await checkout(client, checkout_body(**overrides)))["Orders"][0]["Id"]
    return order_id


async def test_full_lifecycle_and_history(client: Client) -> None:
    oid = await new_order(client)
    for action, code in (("authorize", 1), ("capture", 2), ("ship", 5), ("complete", 10)):
        status, order = await post(client, f"/api/order/{oid}/{action}")
        assert status == 200
        assert order["Status"]["Code"] == code
        assert all(item["Status"] == code for item in order["OrderItems"])
    status, order = await post(client, f"/api/order/{oid}/close")
    assert status == 200
    assert order["ClosedOn"]
    assert order["Status"]["Code"] == 10
    status, err = await post(client, f"/api/order/{oid}/ship")
    assert status == 409
    assert err["Error"] == "illegal_transition"
    assert err["Status"] == {"Code": 10, "Label": "Completed"}
    status, order = await post(client, f"/api/order/{oid}/reopen")
    assert status == 200
    assert order["ClosedOn"] is None
    status, history = await get(client, f"/api/order/{oid}/history")
    assert status == 200
    steps = [(h["Action"], h["Field"], h["From"], h["To"]) for h in history]
    assert steps[:2] == [("create", "Status", None, 0), ("create", "Amount", None, 17980)]
    assert steps[2:4] == [("authorize", "Status", 0, 1), ("capture", "Status", 1, 2)]
    assert steps[4][:3] == ("capture", "PaidOn", None)
    assert steps[5:7] == [("ship", "Status", 2, 5), ("complete", "Status", 5, 10)]
    assert steps[7][:3] == ("close", "ClosedOn", None)
    assert steps[8][:2] == ("reopen", "ClosedOn")
    assert all(h["At"].endswith("Z") for h in history)


async def test_illegal_transitions_are_409_with_the_current_status(client: Client) -> None:
    oid = await new_order(client)
    assert (await post(client, f"/api/order/{oid}/capture"))[0] == 200
    status, err = await post(client, f"/api/order/{oid}/capture")
    assert (status, err["Status"]) == (409, {"Code": 2, "Label": "Payment captured"})
    status, order = await post(client, f"/api/order/{oid}/cancel", {"Reason": "fraud"})
    assert status == 200
    assert order["Status"]["Code"] == 21
    assert order["CancelReason"] == "fraud"
    status, err = await post(client, f"/api/order/{oid}/ship")
    assert status == 409
    assert err["Status"]["Code"] == 21
    status, history = await get(client, f"/api/order/{oid}/history")
    assert [h["Action"] for h in history].count("ship") == 0


async def test_cancel_by_user_and_bad_cancel_bodies(client: Client) -> None:
    oid = await new_order(client)
    status, err = await post(client, f"/api/order/{oid}/cancel", {"Reason": "bored", "By": "cat"})
    assert status == 400
    assert {f["Field"] for f in err["Fields"]} == {"Reason", "By"}
    resp = await client.post(f"/api/order/{oid}/cancel", data=b"{oops", headers=AUTH)
    assert resp.status == 400
    status, order = await post(
        client, f"/api/order/{oid}/cancel", {"Reason": "customer", "By": "user"}
    )
    assert status == 200
    assert order["Status"] == {"Code": 22, "Label": "Cancelled by user"}
    assert order["CancelledOn"]
    assert order["CancelReason"] == "customer"


async def test_deny(client: Client) -> None:
    oid = await new_order(client)
    assert (await post(client, f"/api/order/{oid}/authorize"))[0] == 200
    status, order = await post(client, f"/api/order/{oid}/deny")
    assert (status, order["Status"]["Code"]) == (200, 20)


async def test_unknown_order_is_404(client: Client) -> None:
    for path in (
        "/api/order/sent/999",
        "/api/order/received/999",
        "/api/order/999/history",
        "/api/order/sent/99999999999999999999999",
    ):
        status, err = await get(client, path)
        assert (status, err["Error"]) == (404, "not_found"), path
    status, err = await post(client, "/api/order/999/ship")
    assert status == 404
    status, err = await get(client, "/api/order/sent/abc")
    assert status == 404
    assert err["Error"] == "not_found"


async def test_list_filters_and_paging(start_core: StartCore) -> None:
    now = [datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()]
    client = await start_core(clock=lambda: now[0])
    ids = []
    for device in ("a", "b", "a"):
        ids.append(await new_order(client, Device={"Id": device}))
        now[0] += 86400
    await post(client, f"/api/order/{ids[1]}/ship")

    async def listed(query: str) -> list[int]:
        status, page = await get(client, f"/api/order/received?{query}")
        assert status == 200, page
        return [o["Id"] for o in page["Data"]]

    assert await listed("") == ids
    assert await listed("order=desc") == ids[::-1]
    assert await listed("device=a") == [ids[0], ids[2]]
    assert await listed("status=5") == [ids[1]]
    assert await listed(f"id={ids[2]}") == [ids[2]]
    assert await listed("startDate=02-06-2026") == ids[1:]
    assert await listed("endDate=02-06-2026") == ids[:2]
    assert await listed("startDate=02-06-2026&endDate=02-06-2026") == [ids[1]]
    assert await listed("merchantId=nobody") == []
    _status, page = await get(client, "/api/order/sent?pageSize=2&pageIndex=2")
    assert (page["Total"], page["PageSize"], page["PageIndex"]) == (3, 2, 2)
    assert [o["Id"] for o in page["Data"]] == [ids[2]]
    assert page["Data"][0]["CreatedOn"] == "2026-06-03T12:00:00.000Z"


async def test_bad_filters_are_400(client: Client) -> None:
    status, err = await get(client, "/api/order/sent?pageSize=500&status=abc&startDate=31-02-2026")
    assert status == 400
    assert {f["Field"] for f in err["Fields"]} == {"pageSize", "status", "startDate"}


async def test_catalog_endpoints(client: Client) -> None:
    status, page = await get(client, "/api/sku")
    assert status == 200
    assert page["Total"] == 4
    assert {s["Sku"] for s in page["Data"]} == {"COFFEE-1KG", "TEA-250G", "FILTER-100", "WATER-5L"}
    new = {
        "Sku": "MILK-1L",
        "SkuDescription": "Milk",
        "Price": 650,
        "Currency": "BRL",
        "MerchantId": "00000000-0000-4000-8000-000000000001",
    }
    status, sku = await post(client, "/api/sku", new)
    assert status == 201
    assert sku["SkuId"] > 1004
    assert sku["MerchantName"] == "edgeorder demo store"
    status, err = await post(client, "/api/sku", new)
    assert status == 409
    assert err["Error"] == "sku_exists"
    status, err = await post(
        client,
        "/api/sku",
        {"Sku": "X", "Price": -1, "Currency": "R$", "SkuDescription": "x", "MerchantId": "zz"},
    )
    assert status == 400
    assert {f["Field"] for f in err["Fields"]} == {"Price", "Currency"}
    status, err = await post(client, "/api/sku", {**new, "Sku": "Y", "MerchantId": "new-shop"})
    assert status == 422
    assert err["Fields"][0]["Field"] == "MerchantName"
    data = await checkout(client, checkout_body(Items=[{"SkuId": sku["SkuId"], "Quantity": 2}]))
    assert data["Orders"][0]["Amount"] == 1300
    status, page = await get(client, "/api/sku?pageSize=2&pageIndex=3")
    assert page["Total"] == 5
    assert [s["Sku"] for s in page["Data"]] == ["MILK-1L"]


async def test_unknown_route_and_method_are_json(client: Client) -> None:
    status, err = await get(client, "/api/nothing")
    assert status == 404
    assert err["Error"] == "not_found"
    resp = await client.put("/api/checkout", headers=AUTH)
    assert resp.status == 405
    assert (await resp.json())["Error"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


async def test_a_retried_action_with_its_key_replays_instead_of_409(client: Client) -> None:
    oid = await new_order(client)
    headers = {**AUTH, "Idempotency-Key": "long-press-1"}
    body = {"Reason": "customer", "By": "user"}
    first = await client.post(f"/api/order/{oid}/cancel", json=body, headers=headers)
    again = await client.post(f"/api/order/{oid}/cancel", json=body, headers=headers)
    assert (first.status, again.status) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    other = await client.post(f"/api/order/{oid}/cancel", json=body, headers=AUTH)
    assert other.status == 409
    changed = await client.post(
        f"/api/order/{oid}/cancel", json={"By": "merchant"}, headers=headers
    )
    assert changed.status == 422
    assert (await changed.json())["Error"] == "idempotency_conflict"
    _, history = await get(client, f"/api/order/{oid}/history")
    # Status, CancelledOn, CancelReason, CancelRestock, CancelNotifyCustomer: once
    assert [h["Action"] for h in history].count("cancel") == 5
