"""POST /api/checkout through a real HTTP server: orders, validation, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.ordercore.conftest import AUTH, MERCHANT, checkout, checkout_body

Client = TestClient[Any, Any]


async def test_checkout_creates_an_order_priced_from_the_catalog(client: Client) -> None:
    data = await checkout(client, checkout_body(Test=True))
    assert isinstance(data["CheckoutId"], int)
    [order] = data["Orders"]
    assert order["CheckoutId"] == data["CheckoutId"]
    assert isinstance(order["Id"], int)
    assert order["Status"] == {"Code": 0, "Label": "Created"}
    assert (order["Amount"], order["Currency"], order["Test"]) == (17980, "BRL", True)
    assert order["Device"] == {"Id": "demo-01"}
    assert order["MerchantName"] == "edgeorder demo store"
    assert order["Customer"]["Email"] == "comprador@example.com"
    assert order["PaymentMethod"]["Id"] == data["CheckoutId"]
    assert order["PaymentMethod"]["Data"]["Brand"] == "visa"
    assert order["CreatedOn"].endswith("Z")
    [item] = order["OrderItems"]
    assert item | {"Id": 0} == {
        "Id": 0,
        "ProductId": 1,
        "SkuId": 1001,
        "Sku": "COFFEE-1KG",
        "SkuDescription": "Coffee beans, 1 kg",
        "Amount": 17980,
        "Quantity": 2,
        "Status": 0,
    }
    again = await client.get(f"/api/order/received/{order['Id']}", headers=AUTH)
    assert await again.json() == order


async def test_one_order_per_merchant_sharing_a_checkout(client: Client) -> None:
    other = {
        "Sku": "BREAD-1",
        "SkuDescription": "Bread",
        "Price": 500,
        "Currency": "BRL",
        "MerchantId": "m-2",
        "MerchantName": "Bakery",
    }
    resp = await client.post("/api/sku", json=other, headers=AUTH)
    assert resp.status == 201, await resp.text()
    items = [{"Sku": "TEA-250G", "Quantity": 1}, {"Sku": "BREAD-1", "Quantity": 3}]
    data = await checkout(client, checkout_body(MerchantId=None, Items=items))
    orders = data["Orders"]
    assert [(o["MerchantId"], o["Amount"]) for o in orders] == [(MERCHANT, 2450), ("m-2", 1500)]
    assert {o["CheckoutId"] for o in orders} == {data["CheckoutId"]}
    listed = await client.get(f"/api/order/sent?checkout={data['CheckoutId']}", headers=AUTH)
    assert (await listed.json())["Total"] == 2


async def test_every_field_that_breaks_the_schema_is_named_in_a_400(client: Client) -> None:
    body = checkout_body(
        Customer={"Name": "  ", "Email": "not-an-email"},
        Currency="reais",
        Items=[
            {"Sku": "TEA-250G", "Quantity": 0},
            {"Quantity": 1},
            {"SkuId": 1001.5, "Quantity": 1},
            {"Sku": "TEA-250G", "Quantity": True},
        ],
        PaymentMethod={"Id": 0},
        Device={"Id": "bad id!"},
        Test="yes",
    )
    resp = await client.post("/api/checkout", json=body, headers=AUTH)
    assert resp.status == 400
    err = await resp.json()
    assert err["Error"] == "validation_error"
    assert {f["Field"] for f in err["Fields"]} == {
        "Customer.Name",
        "Customer.Email",
        "Currency",
        "Items[0].Quantity",
        "Items[1]",
        "Items[2].SkuId",
        "Items[3].Quantity",
        "PaymentMethod.Id",
        "Device.Id",
        "Test",
    }
    assert any("Sku or SkuId is required" in f["Reason"] for f in err["Fields"])


async def test_a_whole_float_is_the_integer_as_json_schema_says(client: Client) -> None:
    body = checkout_body(Items=[{"SkuId": 1002.0, "Quantity": 2.0}])
    order = (await checkout(client, body))["Orders"][0]
    assert (order["OrderItems"][0]["Quantity"], order["Amount"]) == (2, 4900)
    for bad in (2.5, "2", True, 1e300):
        body = checkout_body(Items=[{"Sku": "TEA-250G", "Quantity": bad}])
        resp = await client.post("/api/checkout", json=body, headers=AUTH)
        assert resp.status == 400, bad


async def test_what_the_catalog_refuses_is_named_in_a_422(client: Client) -> None:
    body = checkout_body(
        Items=[
            {"Sku": "NOPE", "Quantity": 1},
            {"SkuId": 999, "Quantity": 1},
            {"Sku": "TEA-250G", "SkuId": 1001, "Quantity": 1},
        ]
    )
    resp = await client.post("/api/checkout", json=body, headers=AUTH)
    assert resp.status == 422
    err = await resp.json()
    assert err["Error"] == "unprocessable"
    assert [f["Field"] for f in err["Fields"]] == [
        "Items[0].Sku",
        "Items[1].SkuId",
        "Items[2].SkuId",
    ]
    assert "unknown SKU 'NOPE'" in err["Fields"][0]["Reason"]


async def test_missing_required_fields_and_currency_mismatch(client: Client) -> None:
    resp = await client.post("/api/checkout", json={"Items": []}, headers=AUTH)
    assert resp.status == 400
    assert {f["Field"] for f in (await resp.json())["Fields"]} == {"Customer", "Currency", "Items"}
    resp = await client.post("/api/checkout", json=checkout_body(Currency="USD"), headers=AUTH)
    assert resp.status == 422
    [field] = (await resp.json())["Fields"]
    assert field == {"Field": "Items[0].Sku", "Reason": "priced in BRL, checkout is in USD"}


async def test_malformed_json_is_400(client: Client) -> None:
    for raw in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
        resp = await client.post("/api/checkout", data=raw, headers=AUTH)
        assert resp.status == 400
        assert (await resp.json())["Error"] == "malformed_json"


async def test_idempotency_key_replays_the_original_response(client: Client) -> None:
    key = {"Idempotency-Key": "01JDZ8Q7M3N4P5R6S7T8V9W0XY"}
    first = await client.post("/api/checkout", json=checkout_body(), headers={**AUTH, **key})
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    # same body, different key order: still the same request
    reordered = dict(reversed(list(checkout_body().items())))
    second = await client.post("/api/checkout", json=reordered, headers={**AUTH, **key})
    assert second.status == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await second.read() == await first.read()
    total = await client.get("/api/order/sent", headers=AUTH)
    assert (await total.json())["Total"] == 1


async def test_same_key_other_body_is_a_conflict(client: Client) -> None:
    key = {"Idempotency-Key": "k-1"}
    await checkout(client, checkout_body(), **key)
    other = checkout_body(Items=[{"Sku": "TEA-250G", "Quantity": 1}])
    resp = await client.post("/api/checkout", json=other, headers={**AUTH, **key})
    assert resp.status == 422
    assert (await resp.json())["Error"] == "idempotency_conflict"
    invalid = checkout_body(Items=[{"Sku": "NOPE", "Quantity": 1}])
    resp = await client.post("/api/checkout", json=invalid, headers={**AUTH, **key})
    assert (await resp.json())["Error"] == "idempotency_conflict"


async def test_bad_idempotency_key_is_400(client: Client) -> None:
    resp = await client.post(
        "/api/checkout", json=checkout_body(), headers={**AUTH, "Idempotency-Key": "x" * 300}
    )
    assert resp.status == 400


async def test_concurrent_checkouts_with_one_key_make_exactly_one_order(client: Client) -> None:
    headers = {**AUTH, "Idempotency-Key": "same-press"}

    async def post() -> tuple[int, bytes, bool]:
        resp = await client.post("/api/checkout", json=checkout_body(), headers=headers)
        return resp.status, await resp.read(), "Idempotent-Replayed" in resp.headers

    results = await asyncio.gather(*(post() for _ in range(40)))
    assert {status for status, _, _ in results} == {201}
    assert len({body for _, body, _ in results}) == 1
    assert sum(not replayed for _, _, replayed in results) == 1
    listed = await client.get("/api/order/sent", headers=AUTH)
    assert (await listed.json())["Total"] == 1


async def test_a_token_that_is_not_utf8_is_refused_not_a_crash(client: Client) -> None:
    from tests.support.net import raw_http

    server = client.server
    status, answer = await raw_http(
        str(server.host),
        int(server.port or 0),
        b"GET /api/order/sent HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe",
    )
    assert status == 401, answer
    assert b"unauthorized" in answer


async def test_unauthorized(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}):
        resp = await client.post("/api/checkout", json=checkout_body(), headers=headers)
        assert resp.status == 401
        body = await resp.json()
        assert body["Error"] == "unauthorized"
        assert body["Message"]
    assert (await client.get("/healthz")).status == 200
