"""The values and edits histories of an order (Nuvemshop's two histories). Connection functions.

Values: one entry per change of the order's total. The newest unpaid entry is ``PENDING``; an
edit supersedes it (``CANCELLED``) with a new one for the difference; payment settles it
(``PAID``, ``TotalPaidDiff`` = what was still unpaid); a cancel before payment cancels it, a
cancel after payment adds a refund (``PAID`` with negative amounts: the merchant paid).
Edits: one entry per edit of the lines, pointing at the value entry the edit made.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edgeorder.ordercore.views import dumps, edit_json, value_json

__all__ = [
    "add_edit",
    "add_value",
    "list_edits",
    "list_values",
    "paid_total",
    "settle_pending",
]


def add_value(
    conn: sqlite3.Connection,
    order_id: int,
    *,
    status: str,
    delta: int,
    happened_on: str,
    paid_diff: int = 0,
    method: str | None = None,
    name: str | None = None,
    closed_on: str | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO order_values (order_id, status, total_delta, total_paid_diff,"
        " gateway_method, gateway_name, closed_on, happened_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (order_id, status, delta, paid_diff, method, name, closed_on, happened_on),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def paid_total(conn: sqlite3.Connection, order_id: int) -> int:
    """What the buyer has paid so far, net of refunds."""
    row = conn.execute(
        "SELECT coalesce(sum(total_paid_diff), 0) FROM order_values WHERE order_id = ?",
        (order_id,),
    ).fetchone()
    return int(row[0])


def settle_pending(
    conn: sqlite3.Connection,
    order_id: int,
    status: str,
    at: str,
    *,
    paid_diff: int = 0,
    method: str | None = None,
    name: str | None = None,
) -> None:
    """Close the newest ``PENDING`` entry as ``status`` (``PAID`` or ``CANCELLED``) at ``at``.

    A payment with no pending entry (nothing left to pay) is recorded as its own entry.
    """
    row = conn.execute(
        "SELECT id FROM order_values WHERE order_id = ? AND status = 'PENDING'"
        " ORDER BY id DESC LIMIT 1",
        (order_id,),
    ).fetchone()
    if row is None:
        if status == "PAID" and paid_diff:
            add_value(
                conn,
                order_id,
                status="PAID",
                delta=0,
                happened_on=at,
                paid_diff=paid_diff,
                method=method,
                name=name,
                closed_on=at,
            )
        return
    conn.execute(
        "UPDATE order_values SET status = ?, total_paid_diff = ?, gateway_method = ?,"
        " gateway_name = ?, closed_on = ? WHERE id = ?",
        (status, paid_diff, method, name, at, row["id"]),
    )


def add_edit(
    conn: sqlite3.Connection,
    order_id: int,
    changes: list[dict[str, Any]],
    value_id: int | None,
    reason: str | None,
    at: str,
) -> None:
    conn.execute(
        "INSERT INTO order_edits (order_id, product_changes, value_id, reason, happened_on)"
        " VALUES (?, ?, ?, ?, ?)",
        (order_id, dumps(changes), value_id, reason, at),
    )


def list_values(conn: sqlite3.Connection, order_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM order_values WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    return [value_json(r) for r in rows]


def list_edits(conn: sqlite3.Connection, order_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM order_edits WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    value_ids = [r["value_id"] for r in rows if r["value_id"] is not None]
    by_id: dict[int, sqlite3.Row] = {}
    if value_ids:
        marks = ", ".join("?" * len(value_ids))
        for v in conn.execute(f"SELECT * FROM order_values WHERE id IN ({marks})", value_ids):
            by_id[v["id"]] = v
    return [edit_json(r, by_id.get(r["value_id"])) for r in rows]
