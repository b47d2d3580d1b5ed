"""Nuvemshop connector against a real HTTP server speaking the seed's dialect."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from multidict import CIMultiDict
from ulid import ULID

from edgeorder.ingest.connectors.base import (
    OrderRequest,
    PermanentError,
    TransientError,
    WebhookRejectedError,
)
from edgeorder.ingest.connectors.common import ConnectorOptionsError
from edgeorder.ingest.connectors.nuvemshop import (
    SIGNATURE_HEADER as SIG,
)
from edgeorder.ingest.connectors.nuvemshop import (
    NuvemshopConnector,
    next_page,
    order_state,
    parse_webhook,
)
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.kit.signing import hex_digest
from edgeorder.protocol import State
from tests.connectors.fake_nuvemshop import APP_SECRET, STORE_ID, TOKEN, FakeNuvemshop
from tests.connectors.support import making, order_request, retry_of
from tests.support.net import free_port

PROFILE = {
    "Customer": {"Name": "Maria Silva", "Email": "maria@example.com", "LegalId": "75839566500"},
    "Shipping": {
        "Type": 0,
        "Address": {
            "Street": "Rua Doutor Azevedo Sampaio",
            "Number": "50",
            "Complement": "Apto 8",
            "District": "Centro",
            "City": "Sorocaba",
            "State": "São Paulo",
            "ZipCode": "18010220",
            "Country": "Brasil",
        },
    },
}
OPTIONS: dict[str, Any] = {
    "store_id": STORE_ID,
    "variants": {"COFFEE-1KG": 101, "GHOST": 999},
    "user_agent": "edgeorder (ops@shop.example)",
    "currency": "BRL",
}


def settings(base_url: str, **over: Any) -> ConnectorSettings:
    options = {**OPTIONS, **over.pop("options", {})}
    return ConnectorSettings(
        kind="nuvemshop",
        base_url=base_url,
        token=TOKEN,
        timeout_s=over.pop("timeout_s", 2.0),
        options=options,
        **over,
    )


def order(
    sku: str = "COFFEE-1KG",
    *,
    test: bool = False,
    may_exist: bool = False,
    profile: dict[str, Any] | None = None,
) -> OrderRequest:
    return order_request(
        sku, PROFILE if profile is None else profile, test=test, may_exist=may_exist
    )


Make = Callable[..., NuvemshopConnector]


@pytest.fixture
async def make(nuvemshop: FakeNuvemshop) -> AsyncIterator[Make]:
    async with making(
        NuvemshopConnector, "nuvemshop", base_url=nuvemshop.url, token=TOKEN, options=OPTIONS
    ) as build:
        yield build


async def test_create_sends_every_seed_field(nuvemshop: FakeNuvemshop, make: Make) -> None:
    req = order()
    result = await make().create_order(req)

    assert result.state is State.ORDERED
    assert result.order_id == "871310835"
    assert (result.amount, result.currency) == (8000, "BRL")
    assert result.platform_status == "open/pending/unpacked"
    [post] = nuvemshop.calls("POST")
    assert post.path == f"/v1/{STORE_ID}/orders"
    assert post.headers["Authentication"] == f"bearer {TOKEN}"
    assert post.headers["User-Agent"] == "edgeorder (ops@shop.example)"
    address = {
        "first_name": "Maria",
        "last_name": "Silva",
        "address": "Rua Doutor Azevedo Sampaio",
        "number": "50",
        "floor": "Apto 8",
        "locality": "Centro",
        "city": "Sorocaba",
        "province": "São Paulo",
        "zipcode": "18010220",
        "country": "BR",
    }
    assert post.body == {
        "gateway": "not-provided",
        "payment_status": "pending",
        "status": "open",
        "products": [{"variant_id": 101, "quantity": 2}],
        "inventory_behaviour": "bypass",
        "customer": {
            "name": "Maria Silva",
            "email": "maria@example.com",
            "document": "75839566500",
        },
        "billing_address": address,
        "shipping_address": address,
        "shipping_pickup_type": "ship",
        "shipping": "not-provided",
        "shipping_option": "Não informado",
        "shipping_cost_customer": 0.0,
        "send_confirmation_email": False,
        "send_fulfillment_email": False,
        "currency": "BRL",
        "extra": {"edgeorder_event_id": req.idempotency_key, "edgeorder_device_id": "dev-1"},
    }


async def test_retry_after_lost_reply_finds_the_first_order(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make()
    req = order()
    first = await conn.create_order(req)
    other = await conn.create_order(order())  # a different event is a different order
    assert nuvemshop.calls("GET") == []  # first attempts have nothing to look for
    again = await conn.create_order(retry_of(req))

    assert again.order_id == first.order_id != other.order_id
    assert len(nuvemshop.orders) == 2
    assert len(nuvemshop.calls("POST")) == 2
    lookup = nuvemshop.calls("GET")[-1]
    assert lookup.query["channels"] == "api"
    assert lookup.query["per_page"] == "200"
    # the event's own time (its ULID) less the default clock skew of 600 s, to the second --
    # compared as times: near midnight the two fall on different days
    born = ULID.from_str(req.idempotency_key).datetime
    since = dt.datetime.fromisoformat(lookup.query["created_at_min"])
    assert since == (born - dt.timedelta(seconds=600)).replace(microsecond=0)


async def test_a_device_clock_running_ahead_cannot_hide_the_order(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make()
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    req = OrderRequest(
        idempotency_key=str(ULID.from_datetime(ahead)),
        device_id="dev-1",
        sku="COFFEE-1KG",
        quantity=1,
        profile=PROFILE,
        may_exist=False,
        recorded_at=dt.datetime.now(dt.UTC),  # ingest's own clock
    )
    first = await conn.create_order(req)
    again = await conn.create_order(retry_of(req))
    assert again.order_id == first.order_id
    assert len(nuvemshop.orders) == 1


async def test_the_lookup_follows_the_link_header_to_the_last_page(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make(options={"app_id": 2181})
    req = order()
    first = await conn.create_order(req)
    for _ in range(450):  # 451 API orders: three pages of 200
        await conn.create_order(order())
    nuvemshop.seen.clear()
    missing = await conn.create_order(order(may_exist=True))  # looks through all, then creates
    pages = [c.query.get("page", "1") for c in nuvemshop.calls("GET")]
    assert pages == ["1", "2", "3"]
    assert all(c.query["app_id"] == "2181" for c in nuvemshop.calls("GET"))
    assert len(nuvemshop.calls("POST")) == 1
    assert (await conn.create_order(retry_of(req))).order_id == first.order_id
    assert missing.order_id != first.order_id


async def test_a_lookup_that_cannot_finish_never_creates(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make(options={"lookup_pages": 2})
    for _ in range(401):
        await conn.create_order(order())
    nuvemshop.seen.clear()
    with pytest.raises(TransientError, match="did not reach the last page"):
        await conn.create_order(order(may_exist=True))
    assert nuvemshop.calls("POST") == []


async def test_test_order_is_marked_and_sends_no_email(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make(options={"send_confirmation_email": True})
    await conn.create_order(order())
    await conn.create_order(order(test=True))
    live, test = (c.body for c in nuvemshop.calls("POST"))
    assert live["send_confirmation_email"] is True
    assert "note" not in live
    assert test["send_confirmation_email"] is False
    assert test["extra"]["edgeorder_test"] is True
    assert "TEST" in test["note"]


async def test_platform_refusal_is_permanent_with_its_reason(make: Make) -> None:
    with pytest.raises(PermanentError) as err:
        await make().create_order(order("GHOST"))
    assert err.value.status == 422
    assert "products[0].variant_id: variant not found" in err.value.reason


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (422, {"src": ["can't be blank"]}, "nuvemshop HTTP 422: src: can't be blank"),
        (
            422,
            {"event": ["Invalid event specified"], "url": ["invalid url specified"]},
            "event: Invalid event specified; url: invalid url specified",
        ),
        (400, {"error": "Problems parsing JSON"}, "nuvemshop HTTP 400: Problems parsing JSON"),
        (
            404,
            {"code": 404, "message": "Not Found", "description": "Last page is 3"},
            "Not Found: Last page is 3",
        ),
        (402, "", "nuvemshop HTTP 402: Payment Required: the store's API access is suspended"),
    ],
)
async def test_every_documented_error_shape_keeps_the_platform_reason(
    nuvemshop: FakeNuvemshop, make: Make, status: int, body: Any, reason: str
) -> None:
    nuvemshop.forced.append((status, body))
    with pytest.raises(PermanentError) as err:
        await make().create_order(order())
    assert reason in err.value.reason
    assert err.value.status == status


async def test_a_profile_without_what_the_seed_requires_is_refused_before_any_call(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    bare = {"Customer": {"Name": "Ivan"}, "Shipping": {"Address": {"Street": "Rua A"}}}
    with pytest.raises(PermanentError) as err:
        await make().create_order(order(profile=bare))
    assert err.value.reason.endswith(
        "Customer.Email, Shipping.Address.Number, Shipping.Address.City, "
        "Shipping.Address.State, Shipping.Address.ZipCode"
    )
    assert nuvemshop.seen == []


async def test_a_one_word_name_gets_the_seeds_default_surname(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    profile = {**PROFILE, "Customer": {"Name": "Ivan", "Email": "ivan@example.com"}}
    await make().create_order(order(profile=profile))
    sent = nuvemshop.calls("POST")[0].body["shipping_address"]
    assert (sent["first_name"], sent["last_name"]) == ("Ivan", "Não informado")


async def test_unmapped_sku_is_permanent_before_any_call(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    with pytest.raises(PermanentError, match="no variant_id configured for sku 'TEA'"):
        await make().create_order(order("TEA"))
    assert nuvemshop.seen == []


async def test_bad_token_is_permanent(nuvemshop: FakeNuvemshop, make: Make) -> None:
    conn = NuvemshopConnector(
        ConnectorSettings(kind="nuvemshop", base_url=nuvemshop.url, token="wrong", options=OPTIONS)
    )
    try:
        with pytest.raises(PermanentError, match="Invalid access token") as err:
            await conn.create_order(order())
        assert err.value.status == 401
    finally:
        await conn.close()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_trouble_is_transient(
    nuvemshop: FakeNuvemshop, make: Make, status: int
) -> None:
    nuvemshop.forced.append((status, {"code": status, "message": "Try later"}))
    with pytest.raises(TransientError, match="Try later") as err:
        await make().create_order(order())
    assert err.value.status == status
    assert nuvemshop.orders == {}


async def test_timeout_is_transient(nuvemshop: FakeNuvemshop, make: Make) -> None:
    nuvemshop.stall_next = True
    with pytest.raises(TransientError, match="timeout"):
        await make(timeout_s=0.3).create_order(order())


async def test_connection_refused_is_transient(make: Make) -> None:
    with pytest.raises(TransientError, match="unreachable"):
        await make(base_url=f"http://127.0.0.1:{free_port()}").create_order(order())


async def test_get_order_follows_the_platform_states(nuvemshop: FakeNuvemshop, make: Make) -> None:
    conn = make()
    created = await conn.create_order(order())
    stored = nuvemshop.orders[int(created.order_id)]
    stored["payment_status"] = "paid"
    assert (await conn.get_order(created.order_id)).state is State.PAID
    stored["shipping_status"] = "fulfilled"
    assert (await conn.get_order(created.order_id)).state is State.SHIPPED
    stored["shipping_status"] = "delivered"
    got = await conn.get_order(created.order_id)
    assert got.state is State.DELIVERED
    assert got.platform_status == "open/paid/delivered"
    assert nuvemshop.calls("GET")[-1].path == f"/v1/{STORE_ID}/orders/{created.order_id}"


async def test_get_unknown_order_is_permanent(make: Make) -> None:
    with pytest.raises(PermanentError, match="Order not found") as err:
        await make().get_order("1")
    assert err.value.status == 404


async def test_cancel_sends_seed_fields_and_is_idempotent(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make(options={"cancel_reason": "other", "cancel_restock": False})
    created = await conn.create_order(order())
    cancelled = await conn.cancel_order(created.order_id, idempotency_key=str(ULID()))
    assert cancelled.state is State.CANCELLED
    [cancel] = [c for c in nuvemshop.calls("POST") if c.path.endswith("/cancel")]
    assert cancel.path == f"/v1/{STORE_ID}/orders/{created.order_id}/cancel"
    assert cancel.body == {"reason": "other", "email": True, "restock": False}
    assert nuvemshop.orders[int(created.order_id)]["cancel_reason"] == "other"

    again = await conn.cancel_order(created.order_id, idempotency_key=str(ULID()))
    assert again.state is State.CANCELLED
    assert len([c for c in nuvemshop.calls("POST") if c.path.endswith("/cancel")]) == 1


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        (
            {"status": "open", "payment_status": "pending", "shipping_status": "unpacked"},
            State.ORDERED,
        ),
        ({"status": "open", "payment_status": "authorized"}, State.ORDERED),
        ({"status": "open", "payment_status": "paid", "shipping_status": "unpacked"}, State.PAID),
        ({"payment_status": "paid", "shipping_status": "partially_fulfilled"}, State.SHIPPED),
        ({"payment_status": "paid", "shipping_status": "delivered"}, State.DELIVERED),
        (
            {"status": "closed", "payment_status": "paid", "shipping_status": "delivered"},
            State.DELIVERED,
        ),
        ({"status": "cancelled", "payment_status": "paid"}, State.CANCELLED),
        ({"status": "open", "payment_status": "refunded"}, State.CANCELLED),
        ({"status": "open", "payment_status": "voided"}, State.FAILED),
        ({"status": "open", "payment_status": "abandoned"}, State.FAILED),
    ],
)
def test_state_mapping(fields: dict[str, str], state: State) -> None:
    assert order_state(fields) is state


def test_bad_options_list_every_field() -> None:
    bad = {
        "store_id": "abc",
        "variants": {},
        "gateway": "bitcoin",
        "surprise": 1,
        "user_agent": "edgeorder",  # no contact: the platform answers 400
        "webhook_events": ["product/created"],
    }
    with pytest.raises(ConnectorOptionsError) as err:
        NuvemshopConnector(ConnectorSettings(kind="nuvemshop", options=bad))
    text = str(err.value)
    for name in ("store_id", "variants", "user_agent", "gateway", "surprise", "webhook_events"):
        assert name in text
    assert len(err.value.problems) == 6


# --- webhooks --------------------------------------------------------------------------------


def hooked(**over: Any) -> NuvemshopConnector:
    return NuvemshopConnector(
        settings("http://127.0.0.1:9", options={"app_secret": APP_SECRET, **over})
    )


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Linkedstore-HMAC-SHA256": hex_digest(secret, body)}


async def test_a_webhook_is_verified_against_the_raw_body() -> None:
    conn = hooked()
    try:
        body = json.dumps({"store_id": int(STORE_ID), "event": "order/paid", "id": 42}).encode()
        conn.verify_webhook(CIMultiDict(signed(body)), body)  # any header case
        conn.verify_webhook({"X-Linkedstore-HMAC-SHA256": signed(body)[SIG].upper()}, body)
        for headers, data in [
            (signed(body, "guess"), body),
            (signed(body), body + b" "),
            ({}, body),
            ({SIG: ""}, body),
        ]:
            with pytest.raises(WebhookRejectedError) as err:
                conn.verify_webhook(CIMultiDict(headers), data)
            assert (err.value.code, err.value.status) == ("bad_signature", 401)
        assert conn.webhook_order_ids(body) == ["42"]
    finally:
        await conn.close()


async def test_without_an_app_secret_no_webhook_is_trusted() -> None:
    conn = NuvemshopConnector(settings("http://127.0.0.1:9"))
    try:
        with pytest.raises(WebhookRejectedError, match="no app_secret"):
            conn.verify_webhook(signed(b"{}"), b"{}")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"store_id": 817495, "event": "order/paid", "id": 42}, ("order/paid", "42")),
        ({"store_id": "817495", "event": "order/updated", "id": "42"}, ("order/updated", "42")),
        ({"store_id": 817495, "event": "product/created", "id": 1948209}, None),
        ({"store_id": 1, "event": "order/paid", "id": 42}, None),
        ({"store_id": 817495, "event": "order/paid"}, "malformed"),
        ({"store_id": 817495, "event": "order/paid", "id": True}, "malformed"),
        ({"store_id": 817495, "event": "order/paid", "id": "4 2"}, "malformed"),
        ({"event": 3}, "malformed"),
        ([], "malformed"),
    ],
)
def test_webhook_bodies(body: Any, expected: Any) -> None:
    raw = json.dumps(body).encode()
    if expected == "malformed":
        with pytest.raises(WebhookRejectedError) as err:
            parse_webhook(raw, STORE_ID)
        assert (err.value.code, err.value.status) == ("malformed", 400)
    else:
        assert parse_webhook(raw, STORE_ID) == expected
    with pytest.raises(WebhookRejectedError):
        parse_webhook(b"\xff not json", STORE_ID)


async def test_webhooks_are_registered_once_where_the_platform_delivers(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    conn = make(options={"app_secret": APP_SECRET})
    await conn.register_webhooks("http://127.0.0.1:8080/webhooks/nuvemshop")
    await conn.register_webhooks("https://localhost/webhooks/nuvemshop")
    assert nuvemshop.webhooks == {}
    url = "https://ingest.shop.example/webhooks/nuvemshop"
    await conn.register_webhooks(url)
    await conn.register_webhooks(url)  # idempotent
    assert sorted(h["event"] for h in nuvemshop.webhooks.values()) == [
        "order/cancelled",
        "order/fulfilled",
        "order/paid",
        "order/updated",
    ]
    assert {h["url"] for h in nuvemshop.webhooks.values()} == {url}
    assert make().webhook_name == "nuvemshop"


async def test_without_an_app_secret_nothing_is_registered(
    nuvemshop: FakeNuvemshop, make: Make
) -> None:
    await make().register_webhooks("https://ingest.shop.example/webhooks/nuvemshop")
    assert nuvemshop.seen == []


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            '<https://a/v1/1/orders?page=2&fields=id,extra>; rel="next", '
            '<https://a/v1/1/orders?page=9&fields=id,extra>; rel="last"',
            "https://a/v1/1/orders?page=2&fields=id,extra",
        ),
        ('<https://a/o?page=9>; rel="last", <https://a/o?page=3>; rel=next', "https://a/o?page=3"),
        ('<https://a/o?page=1>; rel="first", <https://a/o?page=1>; rel="prev"', None),
        ("", None),
        (None, None),
    ],
)
def test_next_page_from_the_link_header(link: str | None, expected: str | None) -> None:
    assert next_page(link) == expected
