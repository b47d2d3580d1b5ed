"""Fixtures: a real order core on a real aiohttp test server over a tmp SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder.ordercore import SEED_CATALOG, Settings, create_app

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MERCHANT = "00000000-0000-4000-8000-000000000001"

StartCore = Callable[..., Awaitable[TestClient[Any, Any]]]


def checkout_body(**overrides: Any) -> dict[str, Any]:
    """A valid checkout of 2 x COFFEE-1KG (8990 cents each) from the seed catalog."""
    body: dict[str, Any] = {
        "MerchantId": MERCHANT,
        "Customer": {
            "UserId": "u-1",
            "Name": "Comprador",
            "Email": "comprador@example.com",
            "LegalId": "096.296.777-99",
            "IpAddress": "127.0.0.1",
        },
        "Shipping": {"Type": 0, "Address": {"Street": "Av. Marechal Câmara", "Number": "160"}},
        "PaymentMethod": {"Type": 0, "Data": {"MaskedValue": "1000******1000", "Brand": "visa"}},
        "Currency": "BRL",
        "Items": [{"Sku": "COFFEE-1KG", "Quantity": 2}],
        "Device": {"Id": "demo-01"},
    }
    body.update(overrides)
    return body


@pytest.fixture
def core_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "ordercore",
        tokens=[TOKEN],
        catalog_seed=SEED_CATALOG,
        webhook_timeout_s=2.0,
        webhook_backoff_base_s=0.01,
        webhook_backoff_max_s=0.05,
    )


@pytest.fixture
async def start_core(core_settings: Settings) -> AsyncIterator[StartCore]:
    """Start an order core (a new app each call, same data dir unless given other settings)."""
    clients: list[TestClient[Any, Any]] = []

    async def start(settings: Settings | None = None, **kwargs: Any) -> TestClient[Any, Any]:
        app = create_app(settings or core_settings, **kwargs)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def client(start_core: StartCore) -> TestClient[Any, Any]:
    return await start_core()


async def checkout(
    client: TestClient[Any, Any], body: dict[str, Any] | None = None, **headers: str
) -> dict[str, Any]:
    """POST a checkout that must succeed; the 201 body."""
    resp = await client.post(
        "/api/checkout", json=body or checkout_body(), headers={**AUTH, **headers}
    )
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


@dataclass
class Hooks:
    """A webhook receiver that answers 200: its URL and the event bodies, in arrival order."""

    url: str = ""
    bodies: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.bodies.get(), 10)


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    got = Hooks()

    async def handle(request: web.Request) -> web.Response:
        got.bodies.put_nowait(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = TestServer(app)
    await server.start_server()
    got.url = str(server.make_url("/hook"))
    yield got
    await server.close()
