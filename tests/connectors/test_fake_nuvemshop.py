"""The fake Nuvemshop itself, against its seed and the API documentation it leaves to: the
documented examples pass, and what they rule out is refused in the documented shape, so the
fake catches a connector's bug (the old fake took ``gateway: "bogus"``, a customer without an
e-mail, answered 500 to ``quantity: "1"`` and demanded a User-Agent starting "edgeorder")."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.connectors.fake_nuvemshop import (
    APP_SECRET,
    ENUMS,
    REQUIRED,
    STORE_ID,
    TOKEN,
    FakeNuvemshop,
    create_errors,
)

# The create example of the API's order page (resources/order.md, "POST /orders/"), whose
# answer is the seed's "POST /pedidos 201 Created" example (John Doe, Evergreen Terrace 742).
DOC_CREATE: dict[str, Any] = {
    "currency": "ARS",
    "language": "es",
    "status": "open",
    "gateway": "mercadopago",
    "payment_status": "pending",
    "products": [{"variant_id": 101, "quantity": 2}],
    "inventory_behaviour": "bypass",
    "customer": {
        "email": "john.doe@example.com",
        "name": "John Doe",
        "phone": "+55 11 99999-9999",
        "document": "12345678901",
    },
    "note": None,
    "billing_address": {
        "first_name": "John",
        "last_name": "Doe",
        "address": "Evergreen Terrace",
        "number": "742",
        "floor": None,
        "locality": None,
        "city": "Springfield",
        "province": "Oregon",
        "zipcode": "97475",
        "country": "US",
        "phone": "5551230413",
    },
    "shipping_address": {
        "first_name": "John",
        "last_name": "Doe",
        "address": "Evergreen Terrace",
        "number": "742",
        "floor": None,
        "locality": None,
        "city": "Springfield",
        "province": "Oregon",
        "zipcode": "97475",
        "country": "US",
        "phone": "5551230413",
    },
    "shipping_pickup_type": "ship",
    "shipping": "correios",
    "shipping_option": "Correios - PAC",
    "shipping_tracking_number": None,
    "shipping_cost_customer": 20.0,
    "shipping_cost_owner": 20.0,
    "send_confirmation_email": False,
    "send_fulfillment_email": False,
}
HEADERS = {
    "Authentication": f"bearer {TOKEN}",
    "User-Agent": "MyApp (name@email.com)",  # the introduction's own example
    "Content-Type": "application/json",
}
ORDERS = f"/v1/{STORE_ID}/orders"


async def call(
    fake: FakeNuvemshop,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    async with (
        aiohttp.ClientSession(skip_auto_headers=["User-Agent", "Content-Type"]) as http,
        http.request(
            method, fake.url + path, data=data, headers=HEADERS if headers is None else headers
        ) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return resp.status, text


async def test_the_documented_create_example_makes_the_seeds_order(
    nuvemshop: FakeNuvemshop,
) -> None:
    status, order = await call(nuvemshop, "POST", ORDERS, DOC_CREATE)
    assert status == 201
    assert (order["gateway"], order["currency"], order["storefront"]) == (
        "mercadopago",
        "ARS",
        "api",
    )
    assert (order["status"], order["payment_status"], order["shipping_status"]) == (
        "open",
        "pending",
        "unpacked",
    )
    assert order["total"] == "100.00"  # 2 x 40.00 + 20.0 shipping
    status, again = await call(nuvemshop, "GET", f"{ORDERS}/{order['id']}")
    assert (status, again["id"]) == (200, order["id"])


@pytest.mark.parametrize("name", REQUIRED)
async def test_each_required_field_is_required_in_the_documented_422_shape(
    nuvemshop: FakeNuvemshop, name: str
) -> None:
    body = {k: v for k, v in DOC_CREATE.items() if k != name}
    assert await call(nuvemshop, "POST", ORDERS, body) == (422, {name: ["can't be blank"]})


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("gateway",), "bogus", "gateway"),
        (("payment_status",), "bogus", "payment_status"),
        (("status",), "paid", "status"),
        (("shipping",), "dhl", "shipping"),
        (("shipping_pickup_type",), "drone", "shipping_pickup_type"),
        (("inventory_behaviour",), "maybe", "inventory_behaviour"),
        (("customer", "email"), None, "customer.email"),
        (("customer", "email"), "not-an-email", "customer.email"),
        (("customer", "name"), "", "customer.name"),
        (("products", 0, "quantity"), "1", "products[0].quantity"),
        (("products", 0, "quantity"), 0, "products[0].quantity"),
        (("products", 0, "variant_id"), "101", "products[0].variant_id"),
        (("products", 0, "variant_id"), 999, "products[0].variant_id"),
        (("billing_address", "zipcode"), None, "billing_address.zipcode"),
        (("shipping_address", "country"), "Brasil", "shipping_address.country"),
        (("shipping_cost_customer",), "20", "shipping_cost_customer"),
        (("currency",), "real", "currency"),
        (("send_confirmation_email",), "yes", "send_confirmation_email"),
        (("fulfillment_status",), "unpacked", "fulfillment_status"),
    ],
)
async def test_what_the_seed_rules_out_is_422_naming_the_field(
    nuvemshop: FakeNuvemshop, path: tuple[Any, ...], value: Any, field: str
) -> None:
    body = copy.deepcopy(DOC_CREATE)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    status, errors = await call(nuvemshop, "POST", ORDERS, body)
    assert status == 422
    assert field in errors
    assert nuvemshop.orders == {}


async def test_the_introductions_client_errors(nuvemshop: FakeNuvemshop) -> None:
    assert await call(nuvemshop, "POST", ORDERS, raw=b"{not json") == (
        400,
        {"error": "Problems parsing JSON"},
    )
    no_type = {k: v for k, v in HEADERS.items() if k != "Content-Type"}
    assert (await call(nuvemshop, "POST", ORDERS, DOC_CREATE, headers=no_type))[0] == 415
    for agent in (None, "MyApp", "Python/3.11 aiohttp/3.14"):  # no contact in it
        headers = {k: v for k, v in HEADERS.items() if k != "User-Agent"}
        if agent:
            headers["User-Agent"] = agent
        assert (await call(nuvemshop, "GET", ORDERS, headers=headers))[0] == 400
    for agent in ("Super app (http://superapp.com/contact)", "Awesome app (awesome@app.com)"):
        assert (await call(nuvemshop, "GET", ORDERS, headers={**HEADERS, "User-Agent": agent}))[
            0
        ] == 200
    wrong = {**HEADERS, "Authentication": "bearer nope"}
    assert (await call(nuvemshop, "GET", ORDERS, headers=wrong))[0] == 401


async def test_pages_hold_30_by_default_up_to_200_with_link_headers(
    nuvemshop: FakeNuvemshop,
) -> None:
    for _ in range(35):
        assert (await call(nuvemshop, "POST", ORDERS, DOC_CREATE))[0] == 201
    async with (
        aiohttp.ClientSession() as http,
        http.get(nuvemshop.url + ORDERS, headers=HEADERS) as first,
    ):
        assert len(await first.json()) == 30
        assert first.headers["X-Total-Count"] == "35"
        assert 'rel="next"' in first.headers["Link"]
    status, _ = await call(nuvemshop, "GET", ORDERS + "?per_page=201")
    assert status == 422


async def test_webhooks_only_to_https_and_for_known_events(nuvemshop: FakeNuvemshop) -> None:
    hooks = f"/v1/{STORE_ID}/webhooks"
    assert (await call(nuvemshop, "POST", hooks, {"url": "foobar", "event": "invalid_event"}))[
        0
    ] == 422
    assert (
        await call(nuvemshop, "POST", hooks, {"url": "http://x.example/h", "event": "order/paid"})
    )[0] == 422
    assert (
        await call(nuvemshop, "POST", hooks, {"url": "https://localhost/h", "event": "order/paid"})
    )[0] == 422
    status, hook = await call(
        nuvemshop, "POST", hooks, {"url": "https://myapp.com/hook", "event": "order/paid"}
    )
    assert (status, hook["event"]) == (201, "order/paid")


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    gateway=st.text(max_size=12),
    payment_status=st.text(max_size=12),
    quantity=st.one_of(st.integers(), st.text(max_size=3), st.floats(), st.booleans(), st.none()),
)
def test_only_documented_values_pass(gateway: str, payment_status: str, quantity: Any) -> None:
    """The validator never crashes, and a body passes only with documented values."""
    body = copy.deepcopy(DOC_CREATE)
    body.update(gateway=gateway, payment_status=payment_status)
    body["products"][0]["quantity"] = quantity
    errors = create_errors(body)
    ok = (
        gateway in ENUMS["gateway"]
        and payment_status in ENUMS["payment_status"]
        and isinstance(quantity, int)
        and not isinstance(quantity, bool)
        and quantity >= 1
    )
    assert (errors == {}) is ok


async def test_deliver_signs_like_the_webhook_page(nuvemshop: FakeNuvemshop) -> None:
    received: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["X-Linkedstore-HMAC-SHA256"]))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await nuvemshop.deliver(str(server.make_url("/hook")), "order/paid", 42)
    finally:
        await server.close()
    [(body, signature)] = received
    assert json.loads(body) == {"store_id": int(STORE_ID), "event": "order/paid", "id": 42}
    assert signature == hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
