"""Rows -> wire JSON (PascalCase). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from edgeorder.ordercore.lifecycle import status_json

__all__ = ["dumps", "history_json", "iso_utc", "order_json", "paged"]


class Row(Protocol):
    """A sqlite3.Row or a plain dict with the same column names."""

    def __getitem__(self, key: str, /) -> Any: ...


def iso_utc(ts: float) -> str:
    """Epoch seconds -> ``2026-11-23T17:44:09.123Z``."""
    # isoformat, not strftime: a third of the cost, once per order and webhook delivery
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def dumps(value: Any) -> str:
    """Compact JSON text (orjson: several times cheaper than ``json.dumps``, and the order core
    writes every order's JSON twice per checkout)."""
    return orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def item_json(row: Row) -> dict[str, Any]:
    return {
        "Id": row["id"],
        "ProductId": row["product_id"],
        "SkuId": row["sku_id"],
        "SkuDescription": row["description"],
        "Sku": row["sku"],
        "Amount": row["amount"],
        "Quantity": row["quantity"],
        "Status": row["status"],
    }


def order_json(row: Row, items: Sequence[Row]) -> dict[str, Any]:
    """The Order object of the BlackBox seed, plus Test, ClosedOn, CancelledOn, CancelReason."""
    device = row["device_id"]
    return {
        "Id": row["id"],
        "CheckoutId": row["checkout_id"],
        "CreatedOn": row["created_on"],
        "UpdatedOn": row["updated_on"],
        "Status": status_json(row["status"]),
        "MerchantId": row["merchant_id"],
        "MerchantName": row["merchant_name"],
        "Customer": _loads(row["customer"]),
        "Shipping": _loads(row["shipping"]),
        "PaymentMethod": _loads(row["payment"]),
        "Currency": row["currency"],
        "Amount": row["amount"],
        "Device": None if device is None else {"Id": device},
        "OrderItems": [item_json(item) for item in items],
        "Test": bool(row["test"]),
        "ClosedOn": row["closed_on"],
        "CancelledOn": row["cancelled_on"],
        "CancelReason": row["cancel_reason"],
    }


def history_json(row: Row) -> dict[str, Any]:
    """One recorded change: when, which action, the status after it, and the field's values."""
    return {
        "Id": row["id"],
        "At": row["at"],
        "Action": row["action"],
        "Status": status_json(row["status"]),
        "Field": row["field"],
        "From": _loads(row["from_value"]),
        "To": _loads(row["to_value"]),
    }


def paged(total: int, page_size: int, page_index: int, data: list[Any]) -> dict[str, Any]:
    return {"Total": total, "PageSize": page_size, "PageIndex": page_index, "Data": data}
