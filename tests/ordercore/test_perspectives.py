"""Buyer and seller perspectives: what each principal sees and may change, over real HTTP."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from edgeorder.ordercore import SEED_CATALOG, Settings
from tests.ordercore.conftest import MERCHANT, Hooks, StartCore, checkout_body

Client = TestClient[Any, Any]

TOKENS = [
    "ops=t-ops:role=admin",
    f"shop=t-shop:role=merchant:merchant={MERCHANT}",
    "bakery=t-bakery:role=merchant:merchant=m-2",
    "ana=t-ana:role=customer:user=u-ana",
    "bob=t-bob:role=customer:user=u-bob",
    "ingest=t-ingest:role=app",
    "kiosk=t-kiosk:role=app:app=kiosk",
]


def auth(who: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer t-{who}", **headers}


BREAD = {
    "Sku": "BREAD-1",
    "SkuDescription": "Bread",
    "Price": 500,
    "Currency": "BRL",
    "MerchantId": "m-2",
    "MerchantName": "edgeorder demo bakery",
}


@pytest.fixture
async def core(tmp_path: Path, start_core: StartCore) -> Client:
    settings = Settings(
        data_dir=tmp_path / "oc",
        tokens=TOKENS,
        catalog_seed=SEED_CATALOG,
        webhook_backoff_base_s=0.01,
        webhook_backoff_max_s=0.05,
    )
    client = await start_core(settings)
    resp = await client.post("/api/sku", json=BREAD, headers=auth("bakery"))
    assert resp.status == 201, await resp.text()
    return client


async def call(client: Client, method: str, path: str, who: str, body: Any = None) -> Any:
    resp = await client.request(method, path, json=body, headers=auth(who))
    data = await resp.json() if resp.status != 204 else None
    return resp.status, data


async def order_as(client: Client, who: str, user: str | None, **overrides: Any) -> int:
    body = checkout_body(**overrides)
    body["Customer"] = {**body["Customer"], "UserId": user}
    status, data = await call(client, "POST", "/api/checkout", who, body)
    assert status == 201, data
    order_id: int = data["Orders"][0]["Id"]
    return order_id


async def ids(client: Client, path: str, who: str) -> list[int]:
    status, page = await call(client, "GET", path, who)
    assert status == 200, page
    return [o["Id"] for o in page["Data"]]


async def test_sent_is_the_buyers_view_and_received_the_sellers(core: Client) -> None:
    ana = await order_as(core, "ana", None)  # a customer's UserId is filled in
    bob = await order_as(core, "ops", "u-bob")
    app = await order_as(core, "ingest", "u-ana")
    bread = await order_as(
        core, "ops", "u-ana", MerchantId=None, Items=[{"Sku": "BREAD-1", "Quantity": 1}]
    )
    everything = [ana, bob, app, bread]
    assert await ids(core, "/api/order/sent", "ana") == [ana, app, bread]
    assert await ids(core, "/api/order/sent", "bob") == [bob]
    assert await ids(core, "/api/order/sent", "ingest") == [app]
    assert await ids(core, "/api/order/sent", "kiosk") == []
    assert await ids(core, "/api/order/received", "shop") == [ana, bob, app]
    assert await ids(core, "/api/order/received", "bakery") == [bread]
    assert await ids(core, "/api/order/received", "ops") == everything
    assert await ids(core, "/api/order/sent", "ops") == everything
    assert await ids(core, "/api/order/sent?userId=u-bob", "ops") == [bob]
    assert await ids(core, "/api/order/sent?appId=ingest", "ops") == [app]
    # a filter narrows the scope, it never widens it
    assert await ids(core, f"/api/order/received?merchantId={MERCHANT}", "bakery") == []
    assert await ids(core, "/api/order/sent?userId=u-bob", "ana") == []
    for who, side in (("shop", "sent"), ("ana", "received"), ("ingest", "received")):
        status, err = await call(core, "GET", f"/api/order/{side}", who)
        assert (status, err["Error"]) == (403, "forbidden"), (who, side)
        status, _ = await call(core, "GET", f"/api/order/{side}/{ana}", who)
        assert status == 403
    # someone else's order is not there at all
    for who, path in (
        ("bob", f"/api/order/sent/{ana}"),
        ("kiosk", f"/api/order/sent/{app}"),
        ("bakery", f"/api/order/received/{ana}"),
        ("bob", f"/api/order/{ana}/history"),
        ("bob", f"/api/order/{ana}/history/values"),
    ):
        status, err = await call(core, "GET", path, who)
        assert (status, err["Error"]) == (404, "not_found"), (who, path)
    status, order = await call(core, "GET", f"/api/order/sent/{app}", "ingest")
    assert (status, order["AppId"], order["Customer"]["UserId"]) == (200, "ingest", "u-ana")
    status, order = await call(core, "GET", f"/api/order/sent/{ana}", "ana")
    assert (order["AppId"], order["Customer"]["UserId"]) == (None, "u-ana")


async def test_who_may_check_out_and_as_whom(core: Client) -> None:
    status, err = await call(core, "POST", "/api/checkout", "ana", checkout_body())
    assert (status, err["Error"]) == (403, "forbidden")  # UserId u-1 is not ana's
    status, _ = await call(core, "POST", "/api/checkout", "shop", checkout_body())
    assert status == 403
    batch = {"Checkouts": [{"Checkout": checkout_body()}]}
    status, data = await call(core, "POST", "/api/checkouts", "ana", batch)
    assert status == 200
    assert [r["Status"] for r in data["Results"]] == [403]
    status, _ = await call(core, "POST", "/api/checkouts", "bakery", batch)
    assert status == 403


async def test_only_the_seller_runs_the_lifecycle_and_a_buyer_cancels_as_the_user(
    core: Client,
) -> None:
    oid = await order_as(core, "ingest", "u-ana")
    for who in ("ana", "ingest"):
        status, _ = await call(core, "POST", f"/api/order/{oid}/ship", who)
        assert status == 403
        status, _ = await call(core, "PUT", f"/api/order/{oid}", who, {"OwnerNote": "x"})
        assert status == 403
    status, _ = await call(core, "POST", f"/api/order/{oid}/authorize", "bakery")
    assert status == 404  # not bakery's order
    status, order = await call(core, "POST", f"/api/order/{oid}/authorize", "shop")
    assert (status, order["Status"]["Code"]) == (200, 1)
    for body in ({"By": "merchant"}, {"Restock": False}, {"NotifyCustomer": True}):
        status, err = await call(core, "POST", f"/api/order/{oid}/cancel", "ingest", body)
        assert (status, err["Error"]) == (403, "forbidden"), body
    status, _ = await call(core, "POST", f"/api/order/{oid}/cancel", "kiosk", {})
    assert status == 404  # another app's order
    status, order = await call(
        core, "POST", f"/api/order/{oid}/cancel", "ingest", {"Reason": "customer"}
    )
    assert (status, order["Status"]["Code"], order["CancelReason"]) == (200, 22, "customer")
    assert (order["CancelRestock"], order["CancelNotifyCustomer"]) == (True, True)


async def test_catalog_writes_belong_to_the_merchant(core: Client) -> None:
    sku = {
        "Sku": "CAKE-1",
        "SkuDescription": "Cake",
        "Price": 1200,
        "Currency": "BRL",
        "MerchantId": "m-2",
    }  # m-2 exists (the fixture's bread): no MerchantName needed
    status, _ = await call(core, "POST", "/api/sku", "shop", sku)
    assert status == 403
    status, _ = await call(core, "POST", "/api/sku", "ana", sku)
    assert status == 403
    status, created = await call(core, "POST", "/api/sku", "bakery", sku)
    assert (status, created["MerchantName"]) == (201, "edgeorder demo bakery")
    status, page = await call(core, "GET", "/api/sku?pageSize=200", "ana")
    assert status == 200
    assert "CAKE-1" in {s["Sku"] for s in page["Data"]}


async def test_idempotency_keys_belong_to_their_principal(core: Client) -> None:
    key = "01JDZ8Q7M3N4P5R6S7T8V9W0XY"
    body = checkout_body()
    body["Customer"] = {**body["Customer"], "UserId": None}
    created = []
    for who in ("ana", "bob", "ana"):
        headers = auth(who, **{"Idempotency-Key": key})
        resp = await core.post("/api/checkout", json=body, headers=headers)
        assert resp.status == 201
        created.append((await resp.json())["Orders"][0]["Id"])
    # the same key from another buyer is another order; from the same buyer, a replay
    assert created[0] != created[1]
    assert created[2] == created[0]


async def test_webhooks_carry_the_events_of_the_subscribers_scope(
    core: Client, hooks: Hooks
) -> None:
    url, received = hooks.url, hooks.bodies
    hook = {"Url": url, "Events": ["order/created"], "Secret": "s"}
    status, _ = await call(core, "POST", "/api/webhooks", "ingest", hook)
    assert status == 201
    await order_as(core, "ops", "u-bob")  # not the app's: no delivery for it
    mine = await order_as(core, "ingest", "u-ana")
    hit = await asyncio.wait_for(received.get(), 10)
    assert hit["Order"]["Id"] == mine  # in order per subscriber: bob's was never queued
    status, page = await call(core, "GET", "/api/webhooks", "ingest")
    assert (status, page["Total"]) == (200, 1)
    assert (await call(core, "GET", "/api/webhooks", "shop"))[1]["Total"] == 0
    assert (await call(core, "GET", "/api/webhooks", "ops"))[1]["Total"] == 1
    hook_id = page["Data"][0]["Id"]
    status, _ = await call(core, "DELETE", f"/api/webhooks/{hook_id}", "shop")
    assert status == 404
    status, _ = await call(core, "DELETE", f"/api/webhooks/{hook_id}", "ingest")
    assert status == 204


async def test_a_buyer_may_not_subscribe_and_nobody_to_link_local_targets(
    core: Client, hooks: Hooks
) -> None:
    """The order core POSTs wherever a subscription says: a customer's token may not make
    one, and no token may point it at a link-local address (cloud metadata)."""
    hook = {"Url": hooks.url, "Events": ["*"]}
    status, body = await call(core, "POST", "/api/webhooks", "ana", hook)
    assert (status, body["Error"]) == (403, "forbidden")
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.169.254./x",
        "http://2852039166/",  # the same address in the forms a resolver reads
        "http://0251.0376.0251.0376/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/x",
        "http://0.0.0.0/",
        "http://0/",
    ):
        status, body = await call(core, "POST", "/api/webhooks", "ops", {**hook, "Url": url})
        assert status in (400, 422), url  # refused by the URL's pattern or by its address
        assert body["Fields"][0]["Field"] == "Url", body
    status, _ = await call(core, "POST", "/api/webhooks", "ingest", hook)  # loopback: ingest
    assert status == 201


async def test_keys_from_before_principals_still_replay_for_an_admin_or_an_app(
    tmp_path: Path, start_core: StartCore
) -> None:
    """A retry in flight across the upgrade (and a move of ingest to an app token) replays."""
    old = Settings(data_dir=tmp_path / "oc", tokens=["t-ingest"], catalog_seed=SEED_CATALOG)
    client = await start_core(old)
    resp = await client.post(
        "/api/checkout", json=checkout_body(), headers=auth("ingest", **{"Idempotency-Key": "k"})
    )
    first = await resp.json()
    await client.close()
    conn = sqlite3.connect(old.db_path)  # as migration 2 left the keys of before
    conn.execute("UPDATE idempotency_keys SET owner = ''")
    conn.commit()
    conn.close()
    new = Settings(data_dir=tmp_path / "oc", tokens=TOKENS, catalog_seed=SEED_CATALOG)
    client = await start_core(new)
    resp = await client.post(
        "/api/checkout", json=checkout_body(), headers=auth("ingest", **{"Idempotency-Key": "k"})
    )
    assert (resp.status, resp.headers.get("Idempotent-Replayed")) == (201, "true")
    assert await resp.json() == first
    resp = await client.post(
        "/api/checkout", json=checkout_body(), headers=auth("shop", **{"Idempotency-Key": "k"})
    )
    assert resp.status == 403  # a merchant does not check out at all
