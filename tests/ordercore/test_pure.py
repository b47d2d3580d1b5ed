"""Filters, pricing, signatures and backoff: pure functions."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgeorder.ordercore.catalog import Catalog, CatalogSku
from edgeorder.ordercore.checkout import (
    CheckoutMemo,
    body_hash,
    order_parts,
    parse_checkout,
    price_checkout,
)
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.filters import (
    DATE_PATTERN,
    OrderFilter,
    OrderQuery,
    order_filter,
    parse_query,
)
from tests.ordercore.conftest import checkout_body

CATALOG = Catalog(
    [
        CatalogSku(1, 1, "A", "a", 100, "BRL", "m1", "Shop 1"),
        CatalogSku(2, 2, "B", "b", 250, "BRL", "m2", "Shop 2"),
        CatalogSku(3, 3, "C", "c", 999, "USD", "m1", "Shop 1"),
    ]
)


def parse_order_filter(query: dict[str, str]) -> OrderFilter:
    return order_filter(parse_query(OrderQuery, query), None)


def test_filter_defaults_and_dates() -> None:
    f = parse_order_filter({"startDate": "01-06-2017", "endDate": "10-06-2017", "order": "desc"})
    assert (f.paging.page_index, f.paging.page_size, f.descending) == (1, 25, True)
    assert f.ranges == (
        ("created_on", ">=", "2017-06-01T00:00:00"),
        ("created_on", "<", "2017-06-11T00:00:00"),
    )


def test_the_last_day_has_no_upper_bound_and_a_scope_is_a_filter() -> None:
    f = order_filter(parse_query(OrderQuery, {"endDate": "31-12-9999"}), ("user_id", "u-1"))
    assert f.ranges == ()
    assert f.equal == (("user_id", "u-1"),)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pageIndex", "1000000001"),
        ("pageIndex", "1.0"),
        ("pageIndex", "+1"),
        ("pageIndex", "1_0"),
        ("pageIndex", " 1"),
        ("id", "0"),
        ("startDate", ""),
        ("startDate", "29-02-2023"),
        ("startDate", "31-04-2024"),
        ("startDate", "01-01-0000"),
        ("order", "DESC"),
        ("state", "archived"),
        ("status", "3"),
        ("merchantId", ""),
    ],
)
def test_each_documented_constraint_is_enforced(name: str, value: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_order_filter({name: value})
    assert info.value.status == 400
    assert [f.field for f in info.value.fields] == [name]


@pytest.mark.parametrize("day", ["29-02-2024", "29-02-2000", "31-12-9999", "01-01-0001"])
def test_every_real_date_is_accepted(day: str) -> None:
    parse_order_filter({"startDate": day, "endDate": day})


def test_the_status_filter_lists_every_status() -> None:
    from typing import get_args

    from edgeorder.ordercore.filters import StatusCode
    from edgeorder.ordercore.lifecycle import OrderStatus

    assert set(get_args(get_args(StatusCode)[0])) == {s.value for s in OrderStatus}


def test_filter_names_every_bad_parameter() -> None:
    with pytest.raises(ApiError) as info:
        parse_order_filter(
            {
                "pageIndex": "0",
                "pageSize": "201",
                "status": "3",
                "id": "x",
                "order": "up",
                "startDate": "2017-06-01",
                "device": "bad device!",
            }
        )
    assert info.value.status == 400
    names = {f.field for f in info.value.fields}
    assert names == {"pageIndex", "pageSize", "status", "id", "order", "startDate", "device"}


def test_end_before_start_selects_nothing() -> None:
    assert parse_order_filter({"startDate": "02-01-2026", "endDate": "01-01-2026"}).empty


def test_pricing_splits_by_merchant_and_sums_cents() -> None:
    body = checkout_body(
        MerchantId=None,
        Items=[
            {"Sku": "A", "Quantity": 3},
            {"SkuId": 2, "Quantity": 2},
            {"Sku": "A", "Quantity": 1},
        ],
    )
    drafts = price_checkout(parse_checkout(body), CATALOG)
    assert [(d.merchant_id, d.amount, len(d.lines)) for d in drafts] == [
        ("m1", 400, 2),
        ("m2", 500, 1),
    ]


def test_pricing_rejects_currency_and_merchant_mismatch() -> None:
    body = checkout_body(
        MerchantId="m1", Items=[{"Sku": "C", "Quantity": 1}, {"Sku": "B", "Quantity": 1}]
    )
    with pytest.raises(ApiError) as info:
        price_checkout(parse_checkout(body), CATALOG)
    fields = [(f.field, f.reason) for f in info.value.fields]
    assert fields[0] == ("Items[0].Sku", "priced in USD, checkout is in BRL")
    assert fields[1][0] == "Items[1].Sku"
    assert "m2" in fields[1][1]


def test_body_hash_ignores_key_order() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})


@given(st.integers(0, 39), st.integers(0, 19), st.integers(0, 9999))
@example(29, 2, 2024)
@example(29, 2, 1900)
@example(29, 2, 2000)
@example(29, 2, 4)
@example(31, 4, 2024)
@example(1, 1, 0)
def test_the_date_pattern_admits_exactly_the_real_dates(day: int, month: int, year: int) -> None:
    text = f"{day:02d}-{month:02d}-{year:04d}"
    try:
        datetime.strptime(text, "%d-%m-%Y")
        real = True
    except ValueError:
        real = False
    assert bool(re.match(DATE_PATTERN, text)) is real, text


def test_checkout_memo_validates_and_hashes_a_repeated_body_once() -> None:
    memo = CheckoutMemo(size=2)
    body = checkout_body(Items=[{"Sku": "A", "Quantity": 1}])
    first = memo.parse(body)
    again = memo.parse(dict(reversed(body.items())))  # the same JSON value
    assert again is first
    assert first.digest == body_hash(body)
    assert first.parts == order_parts(first.req)
    assert memo.hits == 1
    other = checkout_body(Items=[{"Sku": "A", "Quantity": 2}])
    assert memo.parse(other).req.Items[0].Quantity == 2
    assert memo.parse(checkout_body(Items=[{"Sku": "B", "Quantity": 1}])).digest != first.digest
    assert memo.parse(body) is not first  # the least recently used body went out
    assert memo.hits == 1


def test_checkout_memo_keeps_no_invalid_body_and_takes_what_orjson_cannot_write() -> None:
    memo = CheckoutMemo()
    bad = checkout_body(Items=[])
    for _ in range(2):
        with pytest.raises(ApiError) as info:
            memo.parse(bad)
        assert info.value.status == 400
    assert memo.hits == 0
    huge = checkout_body(Note=None, Items=[{"Sku": "A", "Quantity": 1, "Extra": 2**70}])
    assert memo.parse(huge).digest == body_hash(huge)
