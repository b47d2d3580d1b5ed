"""Order writes and reads. Plain functions of a sqlite3 connection, run by Writer / Reader.

Write functions run inside the writer's transaction: they never commit themselves.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from edgeorder.ordercore.checkout import CheckoutIn, OrderDraft
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.filters import OrderFilter
from edgeorder.ordercore.lifecycle import (
    EVENTS,
    Action,
    IllegalTransitionError,
    OrderStatus,
    Transition,
    apply_action,
    status_json,
)
from edgeorder.ordercore.store.webhooks import enqueue_event
from edgeorder.ordercore.views import dumps, history_json, iso_utc, order_json, paged

__all__ = [
    "StoredResponse",
    "create_checkout",
    "get_order",
    "idempotent_replay",
    "list_orders",
    "order_history",
    "purge_idempotency_keys",
    "transition",
]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A write's response: status, the exact JSON body, replayed (idempotency) or new."""

    status: int
    body: str
    replayed: bool = False
    notify: tuple[int, ...] = ()  # subscribers with new deliveries


def idempotent_replay(conn: sqlite3.Connection, key: str, body_hash: str) -> StoredResponse | None:
    """The stored response for ``key``; ApiError 422 if it was used with another body."""
    row = conn.execute(
        "SELECT body_hash, status, response FROM idempotency_keys WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    if row["body_hash"] != body_hash:
        raise ApiError(
            422,
            "idempotency_conflict",
            "this Idempotency-Key was already used with a different request body",
        )
    return StoredResponse(row["status"], row["response"], replayed=True)


def _insert_items(
    conn: sqlite3.Connection, order_id: int, draft: OrderDraft
) -> list[dict[str, Any]]:
    """One row per priced line; returns the rows with their new ids."""
    items = []
    for line in draft.lines:
        item = {
            "order_id": order_id,
            "product_id": line.sku.product_id,
            "sku_id": line.sku.sku_id,
            "sku": line.sku.sku,
            "description": line.sku.description,
            "amount": line.amount,
            "quantity": line.quantity,
            "status": int(OrderStatus.CREATED),
        }
        cur = conn.execute(
            "INSERT INTO order_items (order_id, product_id, sku_id, sku, description, amount,"
            " quantity, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(item.values()),
        )
        item["id"] = cur.lastrowid
        items.append(item)
    return items


def _insert_order(
    conn: sqlite3.Connection, checkout_id: int, draft: OrderDraft, req: CheckoutIn, ts: str
) -> dict[str, Any]:
    payment = None
    if req.PaymentMethod is not None:
        payment = {"Id": checkout_id, **req.PaymentMethod.model_dump()}
    row: dict[str, Any] = {
        "checkout_id": checkout_id,
        "created_on": ts,
        "updated_on": ts,
        "status": int(OrderStatus.CREATED),
        "merchant_id": draft.merchant_id,
        "merchant_name": draft.merchant_name,
        "customer": dumps(req.Customer.model_dump()),
        "shipping": None if req.Shipping is None else dumps(req.Shipping.model_dump()),
        "payment": None if payment is None else dumps(payment),
        "currency": req.Currency,
        "amount": draft.amount,
        "device_id": None if req.Device is None else req.Device.Id,
        "test": int(req.Test),
        "closed_on": None,
        "cancelled_on": None,
        "cancel_reason": None,
    }
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cur = conn.execute(f"INSERT INTO orders ({cols}) VALUES ({marks})", tuple(row.values()))
    order_id = row["id"] = cur.lastrowid
    assert order_id is not None
    items = _insert_items(conn, order_id, draft)
    conn.executemany(
        "INSERT INTO order_history (order_id, at, action, status, field, from_value, to_value)"
        " VALUES (?, ?, 'create', 0, ?, NULL, ?)",
        [(order_id, ts, "Status", "0"), (order_id, ts, "Amount", str(draft.amount))],
    )
    return order_json(row, items)


def create_checkout(
    conn: sqlite3.Connection,
    req: CheckoutIn,
    drafts: list[OrderDraft],
    *,
    now: float,
    key: str | None = None,
    body_hash: str = "",
) -> StoredResponse:
    """One transaction: checkout, its orders, history, idempotency key, webhook deliveries."""
    if key is not None:
        replay = idempotent_replay(conn, key, body_hash)
        if replay is not None:
            return replay
    ts = iso_utc(now)
    cur = conn.execute("INSERT INTO checkouts (created_on) VALUES (?)", (ts,))
    checkout_id = cur.lastrowid
    assert checkout_id is not None
    orders = [_insert_order(conn, checkout_id, draft, req, ts) for draft in drafts]
    body = dumps({"CheckoutId": checkout_id, "Orders": orders})
    if key is not None:
        # The PRIMARY KEY is the backstop: a second writer with the same key fails here.
        conn.execute(
            "INSERT INTO idempotency_keys (key, body_hash, status, response, created_ts)"
            " VALUES (?, ?, 201, ?, ?)",
            (key, body_hash, body, now),
        )
    notify = {i for order in orders for i in enqueue_event(conn, "order/created", order, now)}
    return StoredResponse(201, body, notify=tuple(sorted(notify)))


def _load(conn: sqlite3.Connection, order_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM orders WHERE id = ?", (order_id,)
    ).fetchone()
    if row is None:
        raise ApiError.not_found(f"order {order_id} not found")
    return row


def _items(conn: sqlite3.Connection, order_ids: list[int]) -> dict[int, list[sqlite3.Row]]:
    out: dict[int, list[sqlite3.Row]] = {i: [] for i in order_ids}
    if not order_ids:
        return out
    marks = ", ".join("?" * len(order_ids))
    for item in conn.execute(
        f"SELECT * FROM order_items WHERE order_id IN ({marks}) ORDER BY id", order_ids
    ):
        out[item["order_id"]].append(item)
    return out


def get_order(conn: sqlite3.Connection, order_id: int) -> dict[str, Any]:
    """The Order object, or ApiError 404."""
    row = _load(conn, order_id)
    return order_json(row, _items(conn, [order_id])[order_id])


def _changes(t: Transition, ts: str, reason: str | None) -> dict[str, Any]:
    """Column -> new value for a transition."""
    changes: dict[str, Any] = {}
    if t.new_status != t.old_status:
        changes["status"] = int(t.new_status)
    if t.closed != t.was_closed:
        changes["closed_on"] = ts if t.closed else None
    if t.action is Action.CANCEL:
        changes["cancelled_on"] = ts
        changes["cancel_reason"] = reason
    return changes


_FIELD_NAMES = {
    "status": "Status",
    "closed_on": "ClosedOn",
    "cancelled_on": "CancelledOn",
    "cancel_reason": "CancelReason",
}


def _write_changes(
    conn: sqlite3.Connection, row: sqlite3.Row, t: Transition, changes: dict[str, Any], ts: str
) -> None:
    """Update the order (and its items' status) and record one history entry per field."""
    order_id = row["id"]
    sets = ", ".join(f"{col} = ?" for col in [*changes, "updated_on"])
    conn.execute(f"UPDATE orders SET {sets} WHERE id = ?", (*changes.values(), ts, order_id))
    if "status" in changes:
        conn.execute(
            "UPDATE order_items SET status = ? WHERE order_id = ?", (changes["status"], order_id)
        )
    conn.executemany(
        "INSERT INTO order_history (order_id, at, action, status, field, from_value, to_value)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                order_id,
                ts,
                t.action.value,
                int(t.new_status),
                _FIELD_NAMES[col],
                dumps(row[col]),
                dumps(value),
            )
            for col, value in changes.items()
        ],
    )


def transition(
    conn: sqlite3.Connection,
    order_id: int,
    action: Action,
    *,
    now: float,
    cancel_reason: str | None = None,
    cancelled_by: str = "merchant",
    key: str | None = None,
    body_hash: str = "",
) -> StoredResponse:
    """Apply ``action``; record every changed field; enqueue its event; 200 with the Order.

    With an idempotency ``key`` a retry of the same action replays the first answer instead
    of failing with 409 (the order already moved on).
    """
    scoped = None if key is None else f"order/{order_id}/{action.value}:{key}"
    if scoped is not None:
        replay = idempotent_replay(conn, scoped, body_hash)
        if replay is not None:
            return replay
    row = _load(conn, order_id)
    status = OrderStatus(row["status"])
    closed = row["closed_on"] is not None
    try:
        t = apply_action(action, status, closed, cancelled_by=cancelled_by)
    except IllegalTransitionError as exc:
        extra = {"Status": status_json(status), "Closed": closed}
        raise ApiError(409, "illegal_transition", str(exc), extra=extra) from exc
    ts = iso_utc(now)
    _write_changes(conn, row, t, _changes(t, ts, cancel_reason), ts)
    order = get_order(conn, order_id)
    body = dumps(order)
    if scoped is not None:
        conn.execute(
            "INSERT INTO idempotency_keys (key, body_hash, status, response, created_ts)"
            " VALUES (?, ?, 200, ?, ?)",
            (scoped, body_hash, body, now),
        )
    return StoredResponse(200, body, notify=enqueue_event(conn, EVENTS[action], order, now))


def order_history(conn: sqlite3.Connection, order_id: int) -> list[dict[str, Any]]:
    """Every recorded change of an order, oldest first; ApiError 404 for an unknown order."""
    _load(conn, order_id)
    rows = conn.execute(
        "SELECT * FROM order_history WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    return [history_json(r) for r in rows]


def _where(f: OrderFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("status = ?", f.status),
        ("id = ?", f.id),
        ("checkout_id = ?", f.checkout),
        ("merchant_id = ?", f.merchant_id),
        ("device_id = ?", f.device),
        ("created_on >= ?", f.start),
        ("created_on < ?", f.end),
    ):
        if value is not None:
            clauses.append(column)
            args.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def list_orders(conn: sqlite3.Connection, f: OrderFilter) -> dict[str, Any]:
    """``{Total, PageSize, PageIndex, Data}`` for a filter."""
    where, args = _where(f)
    total = conn.execute(f"SELECT count(*) FROM orders{where}", args).fetchone()[0]
    direction = "DESC" if f.descending else "ASC"
    rows = conn.execute(
        f"SELECT * FROM orders{where} ORDER BY id {direction} LIMIT ? OFFSET ?",
        [*args, f.paging.page_size, f.paging.offset],
    ).fetchall()
    items = _items(conn, [r["id"] for r in rows])
    data = [order_json(r, items[r["id"]]) for r in rows]
    return paged(total, f.paging.page_size, f.paging.page_index, data)


def purge_idempotency_keys(conn: sqlite3.Connection, older_than: float) -> int:
    """Forget idempotency keys created before ``older_than`` (epoch seconds)."""
    cur = conn.execute("DELETE FROM idempotency_keys WHERE created_ts < ?", (older_than,))
    return cur.rowcount
