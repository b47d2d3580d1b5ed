"""OneEntry connector against a real HTTP server as strict as the createOrder seed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from edgeorder.ingest.connectors.base import OrderRequest, PermanentError, TransientError
from edgeorder.ingest.connectors.common import ConnectorOptionsError
from edgeorder.ingest.connectors.oneentry import KeyScan, OneEntryConnector, order_state
from edgeorder.ingest.connectors.settings import ConnectorSettings
from edgeorder.protocol import State
from tests.connectors.fake_oneentry import (
    APP_TOKEN,
    LOGIN,
    MARKER,
    PASSWORD,
    USER_TOKEN,
    FakeOneEntry,
)
from tests.connectors.support import making, order_request, retry_of
from tests.support.net import free_port

OPTIONS: dict[str, Any] = {
    "marker": MARKER,
    "form_identifier": "bar-orders-form",
    "payment_account_identifier": "usd-payment",
    "products": {"COSMO": 2957, "GONE": 404},
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
MARK = "edgeorder_event_id"


def order(sku: str = "COSMO", *, test: bool = False, may_exist: bool = False) -> OrderRequest:
    return order_request(sku, PROFILE, test=test, may_exist=may_exist)


Make = Callable[..., OneEntryConnector]


@pytest.fixture
async def make(oneentry: FakeOneEntry) -> AsyncIterator[Make]:
    async with making(
        OneEntryConnector, "oneentry", base_url=oneentry.url, token=APP_TOKEN, options=OPTIONS
    ) as build:
        yield build


async def test_create_order_sends_the_seed_body(oneentry: FakeOneEntry, make: Make) -> None:
    req = order()
    result = await make().create_order(req)

    assert (result.order_id, result.state) == ("233", State.ORDERED)
    assert (result.amount, result.currency, result.platform_status) == (
        30000,
        None,
        "inProgress",
    )
    assert oneentry.calls("GET") == []  # a first attempt has nothing to look for
    [post] = oneentry.calls("POST")
    assert post.path == f"/api/content/orders-storage/marker/{MARKER}/orders"
    assert post.query == {"langCode": "en_US"}
    assert post.headers["x-app-token"] == APP_TOKEN
    assert post.headers["Authorization"] == f"Bearer {USER_TOKEN}"
    assert post.body == {
        "formIdentifier": "bar-orders-form",
        "paymentAccountIdentifier": "usd-payment",
        "formData": [
            {"marker": MARK, "value": req.idempotency_key, "type": "string"},
            {"marker": "name_1", "value": "Ivan", "type": "string"},
            {"marker": "email", "value": "ivan@example.com", "type": "string"},
        ],
        "products": [{"productId": 2957, "quantity": 2}],
    }


@pytest.mark.parametrize("listing", ["newest", "shuffled"])
async def test_a_retry_finds_the_order_among_capped_unordered_pages(
    oneentry: FakeOneEntry, make: Make, listing: str
) -> None:
    oneentry.order = listing  # type: ignore[assignment]
    conn = make(options={"lang_code": "pt_BR"})
    for _ in range(17):
        oneentry.add_order()
    req = order()
    first = await conn.create_order(req)
    for _ in range(40):  # newer orders push it far past the first pages
        oneentry.add_order()
    again = await conn.create_order(retry_of(req))
    assert again.order_id == first.order_id
    assert len(oneentry.calls("POST")) == 1
    lookups = oneentry.calls("GET")
    assert {c.query["limit"] for c in lookups} == {"100"}  # asked for 100, given 10
    assert lookups[0].query == {"langCode": "pt_BR", "offset": "0", "limit": "100"}


@pytest.mark.parametrize("listing", ["newest", "shuffled"])
async def test_a_retry_creates_only_after_seeing_every_order(
    oneentry: FakeOneEntry, make: Make, listing: str
) -> None:
    oneentry.order = listing  # type: ignore[assignment]
    for _ in range(57):
        oneentry.add_order()
    result = await make().create_order(order(may_exist=True))
    assert len(oneentry.calls("POST")) == 1
    assert result.order_id == str(oneentry.next_id - 1)
    if listing == "newest":  # one pass: 6 pages of 10
        assert [c.query["offset"] for c in oneentry.calls("GET")] == [
            "0",
            "10",
            "20",
            "30",
            "40",
            "50",
        ]


async def test_a_lookup_that_cannot_see_every_order_never_creates(
    oneentry: FakeOneEntry, make: Make
) -> None:
    for _ in range(12):
        oneentry.add_order()
    oneentry.hidden = 3  # counted, never listed
    with pytest.raises(TransientError, match="could not see every order"):
        await make(options={"lookup_max_pages": 9}).create_order(order(may_exist=True))
    assert oneentry.calls("POST") == []
    assert len(oneentry.calls("GET")) == 9


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    others=st.integers(min_value=0, max_value=60),
    position=st.floats(min_value=0, max_value=1),
    present=st.booleans(),
    cap=st.integers(min_value=1, max_value=12),
    seed=st.integers(),
)
def test_key_scan_over_reshuffled_capped_pages(
    others: int, position: float, present: bool, cap: int, seed: int
) -> None:
    """Pure model of the lookup: pages of at most ``cap`` from a list reshuffled at every read.
    The scan finds the key exactly when it is there, and ends when it is not."""
    rng = random.Random(seed)
    ids = [f"o{n}" for n in range(others)]
    if present:
        ids.insert(int(position * len(ids)), "mine")
    scan, found, limit = KeyScan(), False, 20
    while scan.pages < 5000:
        listed = ids[:]
        rng.shuffle(listed)
        page = [{"id": i} for i in listed[scan.offset : scan.offset + min(cap, limit)]]
        if any(o["id"] == "mine" for o in page):
            found = True
            break
        scan.take(page, len(ids))
        if scan.complete:
            break
    assert found is present
    if not present:
        assert scan.seen == set(ids)


async def test_an_expired_user_token_is_renewed_and_the_order_made(
    oneentry: FakeOneEntry, make: Make
) -> None:
    conn = make(options={"refresh_token": "user-refresh-token"})
    await conn.create_order(order())
    oneentry.expire_user_tokens()
    await conn.create_order(order())
    oneentry.expire_user_tokens()  # the refresh token rotated: the new one must be used
    await conn.create_order(order())
    assert oneentry.renewals == ["refresh", "refresh"]
    assert len(oneentry.orders) == 3


async def test_login_renews_when_refresh_is_refused(oneentry: FakeOneEntry, make: Make) -> None:
    conn = make(
        options={
            "refresh_token": "stale",
            "login": LOGIN,
            "password": PASSWORD,
            "access_token": None,
        }
    )
    await conn.create_order(order())  # no token yet: the stale refresh fails, it signs in
    oneentry.expire_user_tokens()
    await conn.create_order(order())  # signing in gave a fresh refresh token
    assert oneentry.renewals == ["auth", "refresh"]


async def test_concurrent_401s_renew_once(oneentry: FakeOneEntry, make: Make) -> None:
    conn = make(options={"refresh_token": "user-refresh-token"})
    oneentry.expire_user_tokens()
    await asyncio.gather(*(conn.create_order(order()) for _ in range(5)))
    assert oneentry.renewals == ["refresh"]
    assert len(oneentry.orders) == 5


async def test_a_401_that_cannot_be_renewed_stays_queued(
    oneentry: FakeOneEntry, make: Make
) -> None:
    oneentry.expire_user_tokens()
    with pytest.raises(TransientError, match="configure refresh_token or login/password") as err:
        await make().create_order(order())
    assert err.value.status == 401
    with pytest.raises(TransientError, match="cannot be renewed"):
        await make(options={"login": LOGIN, "password": "wrong"}).create_order(order())
    assert oneentry.orders == {}


async def test_test_order_uses_the_test_account_or_is_refused(
    oneentry: FakeOneEntry, make: Make
) -> None:
    with pytest.raises(PermanentError, match="test order refused"):
        await make().create_order(order(test=True))
    assert oneentry.seen == []
    await make(options={"test_payment_account_identifier": "cash"}).create_order(order(test=True))
    assert oneentry.calls("POST")[0].body["paymentAccountIdentifier"] == "cash"


async def test_refusal_is_permanent_with_the_platform_message(make: Make) -> None:
    with pytest.raises(PermanentError, match="product 404 not found") as err:
        await make().create_order(order("GONE"))
    assert err.value.status == 400


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
        "lookup_limit": 0,
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
        "lookup_limit",
    }
