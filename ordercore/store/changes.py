"""Changes to an existing order: lifecycle actions, PUT updates, line edits; their histories.

Each runs inside one writer transaction: check scope and state, change the row, record the
field history (and the values / edits histories), enqueue the webhook event, keep the answer
for an idempotent retry.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from edgeorder.ordercore.catalog import Catalog
from edgeorder.ordercore.changes import CurrentLine, EditIn, LineChange, OrderUpdateIn, plan_edit
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.lifecycle import (
    EVENTS,
    Action,
    IllegalTransitionError,
    OrderStatus,
    Transition,
    apply_action,
    check_changeable,
    status_json,
)
from edgeorder.ordercore.principals import Principal
from edgeorder.ordercore.store import values
from edgeorder.ordercore.store.orders import (
    StoredResponse,
    idempotent_replay,
    load_order,
    read_order,
    record_fields,
    save_key,
)
from edgeorder.ordercore.store.webhooks import enqueue_event
from edgeorder.ordercore.views import dumps, iso_utc

__all__ = [
    "ActionRequest",
    "edit_order",
    "order_edits",
    "order_values",
    "transition",
    "update_order",
]

_FIELD_NAMES = {
    "status": "Status",
    "closed_on": "ClosedOn",
    "cancelled_on": "CancelledOn",
    "cancel_reason": "CancelReason",
    "cancel_restock": "CancelRestock",
    "cancel_notify": "CancelNotifyCustomer",
    "paid_on": "PaidOn",
    "amount": "Amount",
    "owner_note": "OwnerNote",
    "customer": "Customer",
    "shipping": "Shipping",
}
_JSON_COLUMNS = frozenset({"customer", "shipping"})
_FLAGS = frozenset({"cancel_restock", "cancel_notify"})


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A lifecycle action as the handler validated it."""

    action: Action
    cancel_reason: str | None = None
    cancelled_by: str = "merchant"
    restock: bool = True
    notify: bool = True
    gateway_method: str | None = None
    gateway_name: str | None = None


def _illegal(exc: IllegalTransitionError) -> ApiError:
    extra = {"Status": status_json(exc.status), "Closed": exc.closed}
    return ApiError(409, "illegal_transition", str(exc), extra=extra)


def _replay(
    conn: sqlite3.Connection, principal: Principal, scoped: str | None, body_hash: str
) -> StoredResponse | None:
    return None if scoped is None else idempotent_replay(conn, principal, scoped, body_hash)


def _write(
    conn: sqlite3.Connection, row: sqlite3.Row, action: str, changes: dict[str, Any], ts: str
) -> None:
    """Update the order row (and its items' status) and record one entry per changed field."""
    order_id = row["id"]
    sets = ", ".join(f"{col} = ?" for col in [*changes, "updated_on"])
    conn.execute(f"UPDATE orders SET {sets} WHERE id = ?", (*changes.values(), ts, order_id))
    if "status" in changes:
        conn.execute(
            "UPDATE order_items SET status = ? WHERE order_id = ?", (changes["status"], order_id)
        )

    def wire(col: str, value: Any) -> Any:
        if value is None:
            return None
        if col in _JSON_COLUMNS:
            return _loads(value)
        return bool(value) if col in _FLAGS else value

    status = changes.get("status", row["status"])
    record_fields(
        conn,
        order_id,
        ts,
        action,
        status,
        [(_FIELD_NAMES[c], wire(c, row[c]), wire(c, v)) for c, v in changes.items()],
    )


def _loads(text: str) -> Any:
    return orjson.loads(text)


def _changes(t: Transition, req: ActionRequest, row: sqlite3.Row, ts: str) -> dict[str, Any]:
    """Column -> new value for a transition."""
    changes: dict[str, Any] = {}
    if t.new_status != t.old_status:
        changes["status"] = int(t.new_status)
    if t.closed != t.was_closed:
        changes["closed_on"] = ts if t.closed else None
    if t.action is Action.CANCEL:
        changes["cancelled_on"] = ts
        changes["cancel_reason"] = req.cancel_reason
        changes["cancel_restock"] = int(req.restock)
        changes["cancel_notify"] = int(req.notify)
    paid = t.new_status is OrderStatus.CAPTURED or (
        t.new_status is OrderStatus.COMPLETED and row["paid_on"] is None  # cash on delivery
    )
    if paid:
        changes["paid_on"] = ts
    return changes


def _record_value(
    conn: sqlite3.Connection, row: sqlite3.Row, t: Transition, req: ActionRequest, ts: str
) -> None:
    """What the action does to the order's total: pay, cancel the unpaid, or refund."""
    order_id, amount = row["id"], row["amount"]
    if t.new_status is OrderStatus.CAPTURED or (
        t.new_status is OrderStatus.COMPLETED and row["paid_on"] is None
    ):
        method = req.gateway_method
        if t.new_status is OrderStatus.COMPLETED:
            method = "cash"
        name = req.gateway_name if method == "other" else None
        owed = amount - values.paid_total(conn, order_id)
        values.settle_pending(conn, order_id, "PAID", ts, paid_diff=owed, method=method, name=name)
    elif t.new_status in (OrderStatus.DENIED,) or (
        t.action is Action.CANCEL and row["paid_on"] is None
    ):
        values.settle_pending(conn, order_id, "CANCELLED", ts)
    elif t.action is Action.CANCEL:
        refund = -values.paid_total(conn, order_id)
        values.add_value(
            conn,
            order_id,
            status="PAID",
            delta=-amount,
            paid_diff=refund,
            closed_on=ts,
            happened_on=ts,
        )


def transition(
    conn: sqlite3.Connection,
    order_id: int,
    req: ActionRequest,
    *,
    principal: Principal,
    now: float,
    key: str | None = None,
    body_hash: str = "",
) -> StoredResponse:
    """Apply an action; record every changed field; enqueue its event; 200 with the Order.

    With an idempotency ``key`` a retry of the same action replays the first answer instead
    of failing with 409 (the order already moved on).
    """
    scoped = None if key is None else f"order/{order_id}/{req.action.value}:{key}"
    replay = _replay(conn, principal, scoped, body_hash)
    if replay is not None:
        return replay
    row = load_order(conn, order_id, principal)
    status = OrderStatus(row["status"])
    closed = row["closed_on"] is not None
    try:
        t = apply_action(req.action, status, closed, cancelled_by=req.cancelled_by)
    except IllegalTransitionError as exc:
        raise _illegal(exc) from exc
    ts = iso_utc(now)
    _record_value(conn, row, t, req, ts)
    _write(conn, row, req.action.value, _changes(t, req, row, ts), ts)
    return _answer(conn, order_id, principal, EVENTS[req.action], now, scoped, body_hash)


def _answer(
    conn: sqlite3.Connection,
    order_id: int,
    principal: Principal,
    event: str | None,
    now: float,
    scoped: str | None,
    body_hash: str,
) -> StoredResponse:
    """200 with the order as it is now; its event enqueued; kept for a keyed retry."""
    order = read_order(conn, load_order(conn, order_id, principal))
    body = dumps(order)
    if scoped is not None:
        save_key(conn, principal, scoped, body_hash, StoredResponse(200, body), now)
    notify = () if event is None else enqueue_event(conn, event, order, now)
    return StoredResponse(200, body, notify=notify)


def _update_changes(row: sqlite3.Row, upd: OrderUpdateIn) -> dict[str, Any]:
    fields = upd.model_fields_set
    changes: dict[str, Any] = {}
    if "OwnerNote" in fields and upd.OwnerNote != row["owner_note"]:
        changes["owner_note"] = upd.OwnerNote
    if upd.Customer is not None:
        customer = _loads(row["customer"])
        customer.update(upd.Customer.model_dump(include=upd.Customer.model_fields_set))
        if customer != _loads(row["customer"]):
            changes["customer"] = dumps(customer)
    if "Shipping" in fields:
        shipping = None if upd.Shipping is None else dumps(upd.Shipping.model_dump())
        old = None if row["shipping"] is None else _loads(row["shipping"])
        if (None if shipping is None else _loads(shipping)) != old:
            changes["shipping"] = shipping
    return changes


def update_order(
    conn: sqlite3.Connection,
    order_id: int,
    upd: OrderUpdateIn,
    *,
    principal: Principal,
    now: float,
) -> StoredResponse:
    """PUT: set the owner note and the buyer's data; ``order/updated`` if anything changed.

    The buyer's data may change until the order ships (409 after); the note at any time.
    """
    row = load_order(conn, order_id, principal)
    if upd.Customer is not None or "Shipping" in upd.model_fields_set:
        try:
            check_changeable(
                "change the buyer data of", OrderStatus(row["status"]), row["closed_on"] is not None
            )
        except IllegalTransitionError as exc:
            raise _illegal(exc) from exc
    changes = _update_changes(row, upd)
    if not changes:
        return _answer(conn, order_id, principal, None, now, None, "")
    ts = iso_utc(now)
    _write(conn, row, "update", changes, ts)
    return _answer(conn, order_id, principal, "order/updated", now, None, "")


def _current_lines(conn: sqlite3.Connection, order_id: int) -> list[CurrentLine]:
    rows = conn.execute(
        "SELECT id, sku_id, description, quantity, amount FROM order_items WHERE order_id = ?"
        " ORDER BY id",
        (order_id,),
    ).fetchall()
    return [CurrentLine(*r) for r in rows]


def edit_order(
    conn: sqlite3.Connection,
    order_id: int,
    edit: EditIn,
    catalog: Catalog,
    *,
    principal: Principal,
    now: float,
    key: str | None = None,
    body_hash: str = "",
) -> StoredResponse:
    """Change the quantities of lines / add lines before payment; ``order/edited``.

    The total's change supersedes the pending value entry; the edit is recorded with the
    product changes. An edit that changes nothing is a 200 no-op.
    """
    scoped = None if key is None else f"order/{order_id}/edit:{key}"
    replay = _replay(conn, principal, scoped, body_hash)
    if replay is not None:
        return replay
    row = load_order(conn, order_id, principal)
    try:
        check_changeable(
            "edit the lines of", OrderStatus(row["status"]), row["closed_on"] is not None
        )
    except IllegalTransitionError as exc:
        raise _illegal(exc) from exc
    plan = plan_edit(
        edit, _current_lines(conn, order_id), catalog, row["merchant_id"], row["currency"]
    )
    if not plan.changes:
        return _answer(conn, order_id, principal, None, now, scoped, body_hash)
    ts = iso_utc(now)
    _apply_lines(conn, row, plan.changes)
    value_id = None
    if plan.new_amount != plan.old_amount:
        values.settle_pending(conn, order_id, "CANCELLED", ts)
        value_id = values.add_value(
            conn,
            order_id,
            status="PENDING",
            delta=plan.new_amount - plan.old_amount,
            happened_on=ts,
        )
        _write(conn, row, "edit", {"amount": plan.new_amount}, ts)
    else:
        conn.execute("UPDATE orders SET updated_on = ? WHERE id = ?", (ts, order_id))
    values.add_edit(conn, order_id, [c.json() for c in plan.changes], value_id, edit.Reason, ts)
    return _answer(conn, order_id, principal, "order/edited", now, scoped, body_hash)


def _apply_lines(
    conn: sqlite3.Connection, row: sqlite3.Row, changes: tuple[LineChange, ...]
) -> None:
    for change in changes:
        if change.line is not None and change.new == 0:
            conn.execute("DELETE FROM order_items WHERE id = ?", (change.line.id,))
        elif change.line is not None:
            unit = change.line.amount // change.line.quantity
            conn.execute(
                "UPDATE order_items SET quantity = ?, amount = ? WHERE id = ?",
                (change.new, unit * change.new, change.line.id),
            )
        elif change.sku is not None:
            sku = change.sku
            conn.execute(
                "INSERT INTO order_items (order_id, product_id, sku_id, sku, description,"
                " amount, quantity, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row["id"],
                    sku.product_id,
                    sku.sku_id,
                    sku.sku,
                    sku.description,
                    sku.price * change.new,
                    change.new,
                    row["status"],
                ),
            )


def order_values(
    conn: sqlite3.Connection, order_id: int, principal: Principal
) -> list[dict[str, Any]]:
    """The values history of a visible order, oldest first."""
    load_order(conn, order_id, principal)
    return values.list_values(conn, order_id)


def order_edits(
    conn: sqlite3.Connection, order_id: int, principal: Principal
) -> list[dict[str, Any]]:
    """The edits history of a visible order, oldest first."""
    load_order(conn, order_id, principal)
    return values.list_edits(conn, order_id)
