"""Order creation and reads, idempotency keys, the field history. Functions of a connection.

Write functions run inside the writer's transaction: they never commit themselves. Every read
or write of one order takes the request's principal: an order outside its scope is 404, as if
it did not exist (a customer cannot learn which order ids are someone else's).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from edgeorder.ordercore.checkout import CheckoutIn, OrderDraft, OrderParts, order_parts
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.filters import OrderFilter
from edgeorder.ordercore.lifecycle import CANCELLED, OrderStatus
from edgeorder.ordercore.principals import Principal, Role
from edgeorder.ordercore.store import values
from edgeorder.ordercore.store.webhooks import enqueue_event
from edgeorder.ordercore.views import dumps, history_json, iso_utc, order_json, paged

__all__ = [
    "LEGACY_OWNER",
    "StoredResponse",
    "create_checkout",
    "get_order",
    "idempotent_replay",
    "list_orders",
    "load_order",
    "order_history",
    "purge_idempotency_keys",
    "read_order",
    "record_fields",
    "save_key",
]

LEGACY_OWNER = ""
"""Owner of the idempotency keys stored before principals existed (every token was an admin
then). An admin or an app may still replay them: a retry in flight across the upgrade that
also moved ingest to an app token must not become a second order."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A write's response: status, the exact JSON body, replayed (idempotency) or new."""

    status: int
    body: str
    replayed: bool = False
    notify: tuple[int, ...] = ()  # subscribers with new deliveries


def idempotent_replay(
    conn: sqlite3.Connection, principal: Principal, key: str, body_hash: str
) -> StoredResponse | None:
    """The stored response of ``principal``'s ``key``; ApiError 422 if it was used with
    another body. Keys are per principal: another principal's equal key is not seen."""
    sql = "SELECT body_hash, status, response FROM idempotency_keys WHERE owner = ? AND key = ?"
    row = conn.execute(sql, (principal.key, key)).fetchone()
    if row is None and principal.role in (Role.ADMIN, Role.APP):
        row = conn.execute(sql, (LEGACY_OWNER, key)).fetchone()
    if row is None:
        return None
    if row["body_hash"] != body_hash:
        raise ApiError(
            422,
            "idempotency_conflict",
            "this Idempotency-Key was already used with a different request body",
        )
    return StoredResponse(row["status"], row["response"], replayed=True)


def save_key(
    conn: sqlite3.Connection,
    principal: Principal,
    key: str,
    body_hash: str,
    response: StoredResponse,
    now: float,
) -> None:
    """Keep ``response`` for retries. The PRIMARY KEY (owner, key) is the backstop: a second
    writer with the same key fails here and its whole transaction rolls back."""
    conn.execute(
        "INSERT INTO idempotency_keys (owner, key, body_hash, status, response, created_ts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (principal.key, key, body_hash, response.status, response.body, now),
    )


def record_fields(
    conn: sqlite3.Connection,
    order_id: int,
    at: str,
    action: str,
    status: int,
    changes: list[tuple[str, Any, Any]],
) -> None:
    """One field-history entry per changed field: (Field, From, To)."""
    conn.executemany(
        "INSERT INTO order_history (order_id, at, action, status, field, from_value, to_value)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(order_id, at, action, status, f, dumps(old), dumps(new)) for f, old, new in changes],
    )


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


def _payment(parts: OrderParts, checkout_id: int) -> dict[str, Any] | None:
    """The order's PaymentMethod: the client's ``Id`` if it gave one, else the CheckoutId."""
    if parts.payment is None:
        return None
    payment = dict(parts.payment)
    if payment["Id"] is None:
        payment["Id"] = checkout_id
    return {"Id": payment.pop("Id"), **payment}


def _insert_order(
    conn: sqlite3.Connection,
    checkout_id: int,
    draft: OrderDraft,
    req: CheckoutIn,
    parts: OrderParts,
    ts: str,
    app_id: str | None,
) -> dict[str, Any]:
    payment = _payment(parts, checkout_id)
    row: dict[str, Any] = {
        "checkout_id": checkout_id,
        "created_on": ts,
        "updated_on": ts,
        "status": int(OrderStatus.CREATED),
        "merchant_id": draft.merchant_id,
        "merchant_name": draft.merchant_name,
        "customer": parts.customer,
        "shipping": parts.shipping,
        "payment": None if payment is None else dumps(payment),
        "currency": req.Currency,
        "amount": draft.amount,
        "device_id": None if req.Device is None else req.Device.Id,
        "test": int(req.Test),
        "closed_on": None,
        "cancelled_on": None,
        "cancel_reason": None,
        "user_id": req.Customer.UserId,
        "app_id": app_id,
        "note": req.Note,
        "owner_note": None,
        "paid_on": None,
        "cancel_restock": None,
        "cancel_notify": None,
    }
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cur = conn.execute(f"INSERT INTO orders ({cols}) VALUES ({marks})", tuple(row.values()))
    order_id = row["id"] = cur.lastrowid
    assert order_id is not None
    items = _insert_items(conn, order_id, draft)
    record_fields(
        conn, order_id, ts, "create", 0, [("Status", None, 0), ("Amount", None, draft.amount)]
    )
    values.add_value(conn, order_id, status="PENDING", delta=draft.amount, happened_on=ts)
    return order_json(row, items)


def create_checkout(
    conn: sqlite3.Connection,
    req: CheckoutIn,
    drafts: list[OrderDraft],
    *,
    principal: Principal,
    now: float,
    key: str | None = None,
    body_hash: str = "",
    parts: OrderParts | None = None,
) -> StoredResponse:
    """One transaction: checkout, its orders, histories, idempotency key, webhook deliveries.

    An app's orders carry its AppId: that is what the app sees as its sent orders.
    ``parts``: ``order_parts(req)`` when the caller has them already (the checkout memo).
    """
    parts = parts or order_parts(req)
    if key is not None:
        replay = idempotent_replay(conn, principal, key, body_hash)
        if replay is not None:
            return replay
    ts = iso_utc(now)
    app_id = principal.scope if principal.role is Role.APP else None
    cur = conn.execute("INSERT INTO checkouts (created_on) VALUES (?)", (ts,))
    checkout_id = cur.lastrowid
    assert checkout_id is not None
    orders = [_insert_order(conn, checkout_id, draft, req, parts, ts, app_id) for draft in drafts]
    result = StoredResponse(201, dumps({"CheckoutId": checkout_id, "Orders": orders}))
    if key is not None:
        save_key(conn, principal, key, body_hash, result, now)
    notify = {i for order in orders for i in enqueue_event(conn, "order/created", order, now)}
    return StoredResponse(result.status, result.body, notify=tuple(sorted(notify)))


def load_order(conn: sqlite3.Connection, order_id: int, principal: Principal) -> sqlite3.Row:
    """The order's row, or ApiError 404 if there is none in the principal's scope."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM orders WHERE id = ?", (order_id,)
    ).fetchone()
    if row is None or not principal.owns_order(row["merchant_id"], row["user_id"], row["app_id"]):
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


def read_order(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """The Order object of a loaded row (its items read now)."""
    return order_json(row, _items(conn, [row["id"]])[row["id"]])


def get_order(conn: sqlite3.Connection, order_id: int, principal: Principal) -> dict[str, Any]:
    """The Order object, or ApiError 404."""
    return read_order(conn, load_order(conn, order_id, principal))


def order_history(
    conn: sqlite3.Connection, order_id: int, principal: Principal
) -> list[dict[str, Any]]:
    """Every recorded field change of an order, oldest first; ApiError 404 if not visible."""
    load_order(conn, order_id, principal)
    rows = conn.execute(
        "SELECT * FROM order_history WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    return [history_json(r) for r in rows]


_STATES = {
    "open": f"status NOT IN {tuple(CANCELLED)} AND closed_on IS NULL",
    "closed": "closed_on IS NOT NULL",
    "cancelled": f"status IN {tuple(CANCELLED)}",
}


def _where(f: OrderFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = [f"{column} = ?" for column, _ in f.equal]
    args: list[Any] = [value for _, value in f.equal]
    for column, op, value in f.ranges:
        clauses.append(f"{column} {op} ?")
        args.append(value)
    if f.state is not None:
        clauses.append(_STATES[f.state])
    if f.search is not None:
        pattern = "%" + f.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(
            "(CAST(id AS TEXT) = ? OR json_extract(customer, '$.Name') LIKE ? ESCAPE '\\'"
            " OR json_extract(customer, '$.Email') LIKE ? ESCAPE '\\')"
        )
        args += [f.search, pattern + "%", pattern + "%"]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def list_orders(conn: sqlite3.Connection, f: OrderFilter) -> dict[str, Any]:
    """``{Total, PageSize, PageIndex, Data}`` for a filter."""
    if f.empty:
        return paged(0, f.paging.page_size, f.paging.page_index, [])
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
