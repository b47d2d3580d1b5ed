"""The fake OneEntry itself, against the createOrder seed: the seed's examples pass, and what
the seed rules out is refused, so the fake catches a connector's bug."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.connectors.fake_oneentry import (
    APP_TOKEN,
    CREATE_FIELDS,
    MARKER,
    USER_TOKEN,
    FakeOneEntry,
)

# The seed's body example (Esquema de parâmetros), verbatim.
SEED_BODY = {
    "formIdentifier": "bar-orders-form",
    "paymentAccountIdentifier": "usd-payment",
    "formData": {"marker": "name_1", "value": "Nome", "type": "string"},
    "products": [{"productId": 1, "quantity": 2}],
}
# The seed's "Exemplo mínimo" (its formData braces fixed to the one object they hold).
SEED_MINIMAL = {
    "formIdentifier": "orderForm",
    "paymentAccountIdentifier": "cash",
    "formData": {"marker": "order_name", "type": "string", "value": "Ivan"},
    "products": [{"productId": 2, "quantity": 2}],
}
HEADERS = {"x-app-token": APP_TOKEN, "Authorization": f"Bearer {USER_TOKEN}"}
ORDERS = f"/api/content/orders-storage/marker/{MARKER}/orders"


async def call(
    fake: FakeOneEntry,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    query: str = "?langCode=en_US",
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            fake.url + path + query,
            json=body,
            headers=HEADERS if headers is None else headers,
        ) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


@pytest.mark.parametrize("body", [SEED_BODY, SEED_MINIMAL])
async def test_the_seed_examples_create_an_order_of_the_seed_schema(
    oneentry: FakeOneEntry, body: dict[str, Any]
) -> None:
    status, order = await call(oneentry, "POST", ORDERS, body, query="")  # langCode optional
    assert status == 201
    assert {
        "id",
        "formIdentifier",
        "paymentAccountIdentifier",
        "formData",
        "products",
        "currency",
        "totalSum",
        "createdDate",
        "statusIdentifier",
    } <= set(order)
    assert order["formData"] == [body["formData"]]  # IOrdersFormData[]
    assert set(order["products"][0]) == {"id", "title", "sku", "previewImage", "price", "quantity"}
    assert isinstance(order["totalSum"], int | float)


@pytest.mark.parametrize("name", sorted(CREATE_FIELDS))
async def test_each_required_attribute_is_required(oneentry: FakeOneEntry, name: str) -> None:
    body = {k: v for k, v in SEED_BODY.items() if k != name}
    status, error = await call(oneentry, "POST", ORDERS, body)
    assert (status, error["statusCode"]) == (400, 400)
    assert name in error["message"]


@pytest.mark.parametrize(
    "change",
    [
        {"products": [{"productId": 1, "quantity": "2"}]},
        {"products": [{"productId": True, "quantity": 2}]},
        {"products": [{"productId": 1, "quantity": 0}]},
        {"products": [{"productId": 1}]},
        {"products": []},
        {"formData": {"marker": "name_1", "value": "Nome"}},
        {"formData": [{"marker": "name_1", "value": 7, "type": "string"}]},
        {"formData": []},
        {"formIdentifier": ""},
        {"formIdentifier": "not-linked"},
        {"paymentAccountIdentifier": 5},
        {"statusIdentifier": "paid"},  # an update attribute, not a createOrder one
        {"formidentifier": "bar-orders-form"},
    ],
)
async def test_what_the_seed_rules_out_is_400(
    oneentry: FakeOneEntry, change: dict[str, Any]
) -> None:
    assert (await call(oneentry, "POST", ORDERS, {**SEED_BODY, **change}))[0] == 400
    assert oneentry.orders == {}


async def test_authorization_is_required_and_expires(oneentry: FakeOneEntry) -> None:
    assert (await call(oneentry, "POST", ORDERS, SEED_BODY, headers={}))[0] == 401
    no_user = {"x-app-token": APP_TOKEN}
    assert (await call(oneentry, "POST", ORDERS, SEED_BODY, headers=no_user))[0] == 401
    oneentry.expire_user_tokens()
    assert (await call(oneentry, "POST", ORDERS, SEED_BODY))[0] == 401
    assert oneentry.orders == {}


async def test_a_list_page_is_capped_whatever_the_limit(oneentry: FakeOneEntry) -> None:
    for _ in range(25):
        oneentry.add_order()
    status, page = await call(oneentry, "GET", ORDERS, query="?offset=0&limit=100")
    assert status == 200
    assert (len(page["items"]), page["total"]) == (10, 25)
