"""``OrderCoreConnector.create_orders`` against the real order core's ``POST /api/checkouts``:
one answer per order, the same idempotency as single checkouts, and a fallback to one request
per order where the endpoint is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from ulid import ULID

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import OrderRequest, OrderResult, PermanentError
from edgeorder.ingest.connectors.ordercore import OrderCoreConnector
from tests.ingest.support import CORE_TOKEN, OrderCore
from tests.support.net import free_port


def _request(sku: str = "COFFEE-1KG", device: str = "batch-01") -> OrderRequest:
    return OrderRequest(idempotency_key=str(ULID()), device_id=device, sku=sku, quantity=1)


async def test_one_request_many_orders_each_with_its_own_answer(ordercore: OrderCore) -> None:
    connector = OrderCoreConnector(ordercore.url, CORE_TOKEN, batch_max=8)
    requests = [_request(), _request("NO-SUCH-SKU"), _request("TEA-250G")]
    try:
        first = await connector.create_orders(requests)
        again = await connector.create_orders(requests)  # a retry after a lost reply
    finally:
        await connector.close()

    ok, refused, tea = first
    assert isinstance(ok, OrderResult)
    assert isinstance(tea, OrderResult)
    assert ok.state is p.State.ORDERED
    assert isinstance(refused, PermanentError)
    assert refused.status == 422
    assert "Sku" in refused.reason  # the order core's own field error reaches the device
    assert [getattr(r, "order_id", None) for r in again] == [ok.order_id, None, tea.order_id]
    orders = await ordercore.orders("batch-01")
    assert sorted(str(o["Id"]) for o in orders) == sorted([ok.order_id, tea.order_id])
    stored = await ordercore.call("GET", f"/api/order/received/{tea.order_id}")
    assert stored["Device"] == {"Id": "batch-01"}
    assert stored["OrderItems"][0]["Sku"] == "TEA-250G"


@pytest.fixture
async def core_without_batches() -> AsyncIterator[tuple[str, list[str], list[int]]]:
    """An order core of an older release: ``POST /api/checkout`` only; ``/api/checkouts``
    answers 404 (and counts how often it was asked)."""
    keys: list[str] = []
    batch_calls: list[int] = []

    async def no_batches(request: web.Request) -> web.Response:
        batch_calls.append(1)
        return web.json_response({"Error": "not_found", "Message": "no such route"}, status=404)

    async def checkout(request: web.Request) -> web.Response:
        keys.append(request.headers["Idempotency-Key"])
        n = len(keys)
        return web.json_response(
            {
                "CheckoutId": n,
                "Orders": [{"Id": n, "Status": {"Code": 0}, "Amount": 100, "Currency": "BRL"}],
            },
            status=201,
        )

    app = web.Application()
    app.router.add_post("/api/checkout", checkout)
    app.router.add_post("/api/checkouts", no_batches)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", keys, batch_calls
    await runner.cleanup()


async def test_without_the_batch_endpoint_it_sends_one_request_per_order(
    core_without_batches: tuple[str, list[str], list[int]],
) -> None:
    url, keys, batch_calls = core_without_batches
    connector = OrderCoreConnector(url, CORE_TOKEN, batch_max=8)
    requests = [_request() for _ in range(3)]
    try:
        results = await connector.create_orders(requests)
        later = await connector.create_orders([_request(), _request()])
    finally:
        await connector.close()
    assert sorted(keys[:3]) == sorted(r.idempotency_key for r in requests)
    assert len(keys) == 5
    assert len(batch_calls) == 1  # the 404 is remembered: the second batch went one by one
    assert all(isinstance(r, OrderResult) for r in [*results, *later])
