"""Webhooks: a real receiver server gets signed events in order, retried after failures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder.ordercore import verify
from tests.ordercore.conftest import AUTH, StartCore, checkout, checkout_body

Client = TestClient[Any, Any]
SECRET = "whsec-test"


@dataclass
class Hit:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Receiver:
    """Answers each POST with the next planned status (then 200), recording every hit."""

    plan: list[int] = field(default_factory=list)
    hits: asyncio.Queue[Hit] = field(default_factory=asyncio.Queue)
    hang_first: bool = False
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        status = self.plan.pop(0) if self.plan else 200
        if self.hang_first:
            self.hang_first = False
            await asyncio.Event().wait()  # never answers: the sender's timeout must fire
        await self.hits.put(Hit(status, dict(request.headers), raw))
        return web.Response(status=status)

    async def next(self) -> Hit:
        return await asyncio.wait_for(self.hits.get(), timeout=10)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = TestServer(app)
    await server.start_server()
    rec.url = str(server.make_url("/hook"))
    yield rec
    await server.close()


async def subscribe(
    client: Client, url: str, events: list[str], secret: str | None = SECRET
) -> Any:
    body: dict[str, Any] = {"Url": url, "Events": events}
    if secret is not None:
        body["Secret"] = secret
    resp = await client.post("/api/webhooks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def assert_signed(hit: Hit, secret: str = SECRET) -> None:
    """Signed with the attempt's time (unix seconds of the order core's clock)."""
    timestamp = int(hit.headers["X-Edgeorder-Timestamp"])
    assert abs(timestamp - time.time()) < 3600
    assert verify(secret, hit.raw, hit.headers["X-Edgeorder-Signature"], timestamp)
    assert hit.headers["X-Edgeorder-Event"] == hit.body["Event"]
    assert hit.headers["X-Edgeorder-Delivery"] == str(hit.body["Id"])


async def test_signed_events_arrive_in_order(client: Client, receiver: Receiver) -> None:
    hook = await subscribe(client, receiver.url, ["*"])
    assert set(hook) == {"Id", "Url", "Events", "CreatedOn"}
    assert hook["Events"] == ["*"]
    oid = (await checkout(client))["Orders"][0]["Id"]
    for action in ("capture", "ship", "complete", "close", "reopen"):
        resp = await client.post(f"/api/order/{oid}/{action}", headers=AUTH)
        assert resp.status == 200
    hits = [await receiver.next() for _ in range(6)]
    for hit in hits:
        assert_signed(hit)
        assert hit.body["Order"]["Id"] == oid
        assert hit.body["CreatedOn"].endswith("Z")
    assert [h.body["Event"] for h in hits] == [
        "order/created",
        "order/paid",
        "order/shipped",
        "order/completed",
        "order/closed",
        "order/reopened",
    ]
    assert [h.body["Order"]["Status"]["Code"] for h in hits] == [0, 2, 5, 10, 10, 10]
    ids = [h.body["Id"] for h in hits]
    assert ids == sorted(ids)


async def test_a_failing_receiver_is_retried_and_order_is_kept(
    client: Client, receiver: Receiver
) -> None:
    receiver.plan = [500, 503]
    await subscribe(client, receiver.url, ["order/created", "order/shipped"])
    oid = (await checkout(client))["Orders"][0]["Id"]
    resp = await client.post(f"/api/order/{oid}/ship", headers=AUTH)
    assert resp.status == 200  # the API never waits for the subscriber
    hits = [await receiver.next() for _ in range(4)]
    assert [(h.status, h.body["Event"]) for h in hits] == [
        (500, "order/created"),
        (503, "order/created"),
        (200, "order/created"),
        (200, "order/shipped"),
    ]
    assert len({h.raw for h in hits[:3]}) == 1  # a retry resends the same signed body
    for hit in hits:
        assert_signed(hit)


async def test_a_hanging_receiver_times_out_and_is_retried(
    start_core: StartCore, core_settings: Any, receiver: Receiver
) -> None:
    client = await start_core(core_settings.model_copy(update={"webhook_timeout_s": 0.3}))
    receiver.hang_first = True
    await subscribe(client, receiver.url, ["order/created"])
    await checkout(client)
    hit = await receiver.next()
    assert hit.status == 200
    assert hit.body["Event"] == "order/created"


async def test_undelivered_events_survive_a_restart(
    start_core: StartCore, core_settings: Any, receiver: Receiver
) -> None:
    slow = {"webhook_backoff_base_s": 600.0, "webhook_backoff_max_s": 600.0}
    first = await start_core(core_settings.model_copy(update=slow))
    receiver.plan = [500]
    await subscribe(first, receiver.url, ["*"], secret=None)
    await checkout(first)
    failed = await receiver.next()
    assert failed.status == 500
    await first.close()  # its retry was due in >= 5 minutes: it never came
    assert receiver.hits.empty()
    # the new process starts 20 minutes later: the persisted retry is due, and is sent
    await start_core(clock=lambda: time.time() + 1200)
    hit = await receiver.next()
    assert hit.status == 200
    assert hit.body["Id"] == failed.body["Id"]
    assert hit.raw == failed.raw


async def test_generated_secret_and_event_filter(client: Client, receiver: Receiver) -> None:
    hook = await subscribe(client, receiver.url, ["order/cancelled"], secret=None)
    secret = hook["Secret"]
    assert len(secret) >= 32
    oid = (await checkout(client))["Orders"][0]["Id"]
    await client.post(f"/api/order/{oid}/cancel", json={"By": "user"}, headers=AUTH)
    hit = await receiver.next()
    assert hit.body["Event"] == "order/cancelled"  # order/created was not subscribed
    assert hit.body["Order"]["Status"]["Code"] == 22
    assert_signed(hit, secret)


async def test_webhook_api_errors_list_and_delete(client: Client, receiver: Receiver) -> None:
    resp = await client.post(
        "/api/webhooks", json={"Url": "ftp://x", "Events": ["order/eaten"]}, headers=AUTH
    )
    assert resp.status == 400
    assert {f["Field"] for f in (await resp.json())["Fields"]} == {"Url", "Events[0]"}
    for bad in (
        {"Url": receiver.url, "Events": []},
        {"Url": "", "Events": ["*"]},
        {"Url": receiver.url, "Events": ["*"], "Secret": ""},
        {"Url": "http://host:99999/", "Events": ["*"]},
    ):
        resp = await client.post("/api/webhooks", json=bad, headers=AUTH)
        assert resp.status == 400, bad
    hook = await subscribe(client, receiver.url, ["order/created"])
    listed = await (await client.get("/api/webhooks", headers=AUTH)).json()
    assert [h["Id"] for h in listed["Data"]] == [hook["Id"]]
    assert "Secret" not in listed["Data"][0]
    assert (await client.delete(f"/api/webhooks/{hook['Id']}", headers=AUTH)).status == 204
    assert (await client.delete(f"/api/webhooks/{hook['Id']}", headers=AUTH)).status == 404
    listed = await (await client.get("/api/webhooks", headers=AUTH)).json()
    assert listed["Total"] == 0
    await checkout(client, checkout_body())
    # after deletion nothing is sent; a fresh subscriber proves the dispatcher is alive
    await subscribe(client, receiver.url, ["order/created"])
    data = await checkout(client, checkout_body())
    hit = await receiver.next()
    assert hit.body["Order"]["Id"] == data["Orders"][0]["Id"]


async def test_a_burst_is_delivered_completely_once_and_in_order(
    client: Client, receiver: Receiver
) -> None:
    await subscribe(client, receiver.url, ["order/created"])
    created = await asyncio.gather(*(checkout(client) for _ in range(60)))
    hits = [await receiver.next() for _ in range(60)]
    ids = [h.body["Id"] for h in hits]
    assert ids == sorted(set(ids))  # in order, no duplicates
    assert {h.body["Order"]["Id"] for h in hits} == {c["Orders"][0]["Id"] for c in created}
    assert receiver.hits.empty()
