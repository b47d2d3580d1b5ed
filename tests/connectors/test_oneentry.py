"""OneEntry connector against a real HTTP server speaking the createOrder dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ulid import ULID

from edgeorder.ingest.connectors.base import OrderRequest, PermanentError, TransientError
from edgeorder.ingest.connectors.common import ConnectorOptionsError
from edgeorder.ingest.connectors.oneentry import OneEntryConnector, order_state
from edgeorder.ingest.settings import ConnectorSettings
from edgeorder.protocol import State
from tests.connectors.fake_oneentry import APP_TOKEN, MARKER, USER_TOKEN, FakeOneEntry
from tests.support.net import free_port

OPTIONS: dict[str, Any] = {
    "marker": MARKER,
    "form_identifier": "bar-orders-form",
    "payment_account_identifier": "usd-payment",
    "products": {"COSMO": 2957, "GONE": 1},
    "form_fields": {
        "name_1": "Customer.Name",
        "email": "Customer.Email",
        "street": "Shipping.Address.Street",
    },
    "access_token": USER_TOKEN,
    "status_map": {
        "paid": "paid",
        "sent": "shipped",
        "done": "delivered",
        "cancelled": "cancelled",
    },
}
PROFILE = {"Customer": {"Name": "Ivan", "Email": "ivan@example.com"}}


def order(sku: str = "COSMO", *, test: bool = False) -> OrderRequest:
    return OrderRequest(
        idempotency_key=str(ULID()),
        device_id="dev-1",
        sku=sku,
        quantity=2,
        test=test,
        profile=PROFILE,
    )


Make = Callable[..., OneEntryConnector]


@pytest.fixture
async def make(oneentry: FakeOneEntry) -> AsyncIterator[Make]:
    made: list[OneEntryConnector] = []

    def build(**over: Any) -> OneEntryConnector:
        settings = ConnectorSettings(
            kind="oneentry",
            base_url=over.pop("base_url", oneentry.url),
            token=over.pop("token", APP_TOKEN),
            timeout_s=over.pop("timeout_s", 2.0),
            options={**OPTIONS, **over.pop("options", {})},
        )
        made.append(OneEntryConnector(settings))
        return made[-1]

    yield build
    for conn in made:
        await conn.close()


async def test_create_order_sends_the_seed_body(oneentry: FakeOneEntry, make: Make) -> None:
    req = order()
    result = await make().create_order(req)

    assert (result.order_id, result.state) == ("233", State.ORDERED)
    assert (result.amount, result.currency, result.platform_status) == (
        30000,
        "USD",
        "inProgress",
    )
    [post] = oneentry.calls("POST")
    assert post.path == f"/api/content/orders-storage/marker/{MARKER}/orders"
    assert post.query == {"langCode": "en_US"}
    assert post.headers["x-app-token"] == APP_TOKEN
    assert post.headers["Authorization"] == f"Bearer {USER_TOKEN}"
    assert post.body == {
        "formIdentifier": "bar-orders-form",
        "paymentAccountIdentifier": "usd-payment",
        "formData": [
            {"marker": "edgeorder_event_id", "value": req.idempotency_key, "type": "string"},
            {"marker": "name_1", "value": "Ivan", "type": "string"},
            {"marker": "email", "value": "ivan@example.com", "type": "string"},
        ],
        "products": [{"productId": 2957, "quantity": 2}],
    }


async def test_retry_finds_the_order_carrying_the_event_id(
    oneentry: FakeOneEntry, make: Make
) -> None:
    conn = make(options={"lang_code": "pt_BR"})
    req = order()
    first = await conn.create_order(req)
    await conn.create_order(order())
    again = await conn.create_order(req)
    assert again.order_id == first.order_id
    assert len(oneentry.orders) == 2
    lookup = oneentry.calls("GET")[-1]
    assert lookup.query == {"langCode": "pt_BR", "offset": "0", "limit": "100"}


async def test_test_order_uses_the_test_account_or_is_refused(
    oneentry: FakeOneEntry, make: Make
) -> None:
    with pytest.raises(PermanentError, match="test order refused"):
        await make().create_order(order(test=True))
    assert oneentry.seen == []
    await make(options={"test_payment_account_identifier": "cash"}).create_order(order(test=True))
    assert oneentry.calls("POST")[0].body["paymentAccountIdentifier"] == "cash"


async def test_refusal_is_permanent_with_the_platform_message(make: Make) -> None:
    with pytest.raises(PermanentError, match="product 1 not found") as err:
        await make().create_order(order("GONE"))
    assert err.value.status == 400
    with pytest.raises(PermanentError, match="user authorization required") as err:
        await make(options={"access_token": None}).create_order(order())
    assert err.value.status == 401


async def test_unmapped_sku_is_permanent_before_any_call(
    oneentry: FakeOneEntry, make: Make
) -> None:
    with pytest.raises(PermanentError, match="no productId configured for sku 'TEA'"):
        await make().create_order(order("TEA"))
    assert oneentry.seen == []


async def test_5xx_429_timeout_and_refused_are_transient(
    oneentry: FakeOneEntry, make: Make
) -> None:
    for status in (500, 429):
        oneentry.forced.append((status, {"statusCode": status, "message": "busy"}))
        with pytest.raises(TransientError, match="busy"):
            await make().create_order(order())
    oneentry.stall_next = True
    with pytest.raises(TransientError, match="timeout"):
        await make(timeout_s=0.3).create_order(order())
    with pytest.raises(TransientError, match="unreachable"):
        await make(base_url=f"http://127.0.0.1:{free_port()}").create_order(order())
    assert oneentry.orders == {}


async def test_get_order_maps_status_identifier(oneentry: FakeOneEntry, make: Make) -> None:
    conn = make()
    created = await conn.create_order(order())
    for status, state in [
        ("paid", State.PAID),
        ("sent", State.SHIPPED),
        ("done", State.DELIVERED),
        ("weird", State.ORDERED),
    ]:
        oneentry.orders[int(created.order_id)]["statusIdentifier"] = status
        got = await conn.get_order(created.order_id)
        assert (got.state, got.platform_status) == (state, status)
    assert oneentry.calls("GET")[-1].path.endswith(f"/orders/{created.order_id}")


async def test_cancel_sets_the_configured_status_once(oneentry: FakeOneEntry, make: Make) -> None:
    conn = make(options={"cancel_status_identifier": "cancelled"})
    created = await conn.create_order(order())
    result = await conn.cancel_order(created.order_id, idempotency_key=str(ULID()))
    assert result.state is State.CANCELLED
    [put] = oneentry.calls("PUT")
    assert put.body["statusIdentifier"] == "cancelled"
    assert put.body["products"] == [{"productId": 2957, "quantity": 2}]
    again = await conn.cancel_order(created.order_id, idempotency_key=str(ULID()))
    assert again.state is State.CANCELLED
    assert len(oneentry.calls("PUT")) == 1


async def test_cancel_without_a_cancel_status_is_permanent(make: Make) -> None:
    with pytest.raises(PermanentError, match="cancel_status_identifier"):
        await make().cancel_order("233", idempotency_key=str(ULID()))


def test_state_without_status_is_ordered() -> None:
    assert order_state({"id": 1}, {"paid": State.PAID}) is State.ORDERED
    assert order_state({"statusIdentifier": "paid"}, {"paid": State.PAID}) is State.PAID


def test_bad_options_list_every_field() -> None:
    bad = {
        "marker": "",
        "products": {"X": "not-a-number"},
        "lang_code": "english",
        "status_map": {"x": "teleported"},
    }
    with pytest.raises(ConnectorOptionsError) as err:
        OneEntryConnector(ConnectorSettings(kind="oneentry", options=bad))
    names = {p.split(":")[0] for p in err.value.problems}
    assert names == {
        "marker",
        "form_identifier",
        "payment_account_identifier",
        "products.X",
        "lang_code",
        "status_map.x",
    }
