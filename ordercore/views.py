"""Rows -> wire JSON (PascalCase). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from edgeorder.ordercore.lifecycle import order_state, status_json

__all__ = [
    "dumps",
    "edit_json",
    "history_json",
    "iso_utc",
    "order_json",
    "paged",
    "value_json",
]


class Row(Protocol):
    """A sqlite3.Row or a plain dict with the same column names."""

    def __getitem__(self, key: str, /) -> Any: ...


_last_iso: tuple[float, str] = (float("nan"), "")


def iso_utc(ts: float) -> str:
    """Epoch seconds -> ``2026-11-23T17:44:09.123Z``."""
    global _last_iso
    last = _last_iso  # one read: another thread may replace it meanwhile
    if last[0] == ts:  # the same instant again: a checkout formats its time for every row
        return last[1]
    # isoformat, not strftime: a third of the cost, once per order and webhook delivery
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    _last_iso = (ts, text)
    return text


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


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def order_json(row: Row, items: Sequence[Row]) -> dict[str, Any]:
    """The Order object of the BlackBox seed, plus the Nuvemshop lifecycle's fields (State,
    notes, payment date, cancellation) and AppId (the app that checked out, if any)."""
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
        "State": order_state(row["status"], row["closed_on"] is not None),
        "AppId": row["app_id"],
        "Note": row["note"],
        "OwnerNote": row["owner_note"],
        "PaidOn": row["paid_on"],
        "ClosedOn": row["closed_on"],
        "CancelledOn": row["cancelled_on"],
        "CancelReason": row["cancel_reason"],
        "CancelRestock": _flag(row["cancel_restock"]),
        "CancelNotifyCustomer": _flag(row["cancel_notify"]),
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


def value_json(row: Row) -> dict[str, Any]:
    """One change of the order's total (Nuvemshop's values history, BlackBox spelling)."""
    return {
        "Status": row["status"],
        "TotalDelta": row["total_delta"],
        "TotalPaidDiff": row["total_paid_diff"],
        "GatewayMethod": row["gateway_method"],
        "GatewayName": row["gateway_name"],
        "ClosedOn": row["closed_on"],
        "HappenedOn": row["happened_on"],
    }


def edit_json(row: Row, value: Row | None) -> dict[str, Any]:
    """One edit of the order's lines (Nuvemshop's edits history) with the value entry it made."""
    return {
        "ProductChanges": _loads(row["product_changes"]),
        "TransactionInformation": None if value is None else value_json(value),
        "Reason": row["reason"],
        "HappenedOn": row["happened_on"],
    }


def paged(total: int, page_size: int, page_index: int, data: list[Any]) -> dict[str, Any]:
    return {"Total": total, "PageSize": page_size, "PageIndex": page_index, "Data": data}
