"""Webhook subscribers and their delivery outbox. Functions of a sqlite3 connection."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.principals import Principal, key_sees_order
from edgeorder.ordercore.views import dumps, iso_utc

__all__ = [
    "Delivery",
    "Subscriber",
    "add_webhook",
    "delete_webhook",
    "enqueue_event",
    "list_webhooks",
    "mark_delivered",
    "mark_failed_attempt",
    "pending_deliveries",
    "pending_subscribers",
    "subscriber",
]


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    event: str
    body: str
    attempts: int
    next_attempt_ts: float


def webhook_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "Id": row["id"],
        "Url": row["url"],
        "Events": json.loads(row["events"]),
        "CreatedOn": row["created_on"],
    }


def add_webhook(
    conn: sqlite3.Connection,
    url: str,
    events: list[str],
    secret: str,
    now: float,
    principal: Principal,
) -> dict[str, Any]:
    """Subscribe for ``principal``: it receives the events of the orders it sees."""
    cur = conn.execute(
        "INSERT INTO webhooks (url, events, secret, created_on, owner) VALUES (?, ?, ?, ?, ?)",
        (url, dumps(events), secret, iso_utc(now), principal.key),
    )
    row = conn.execute("SELECT * FROM webhooks WHERE id = ?", (cur.lastrowid,)).fetchone()
    return webhook_json(row)


def _owned(principal: Principal) -> tuple[str, list[Any]]:
    """An admin manages every subscription; anyone else only its own."""
    return ("", []) if principal.is_admin else (" AND owner = ?", [principal.key])


def list_webhooks(conn: sqlite3.Connection, principal: Principal) -> list[dict[str, Any]]:
    where, args = _owned(principal)
    rows = conn.execute(
        f"SELECT * FROM webhooks WHERE deleted = 0{where} ORDER BY id", args
    ).fetchall()
    return [webhook_json(r) for r in rows]


def delete_webhook(conn: sqlite3.Connection, webhook_id: int, principal: Principal) -> None:
    """Unsubscribe; its undelivered deliveries are dropped. ApiError 404 if unknown (or not
    the principal's)."""
    where, args = _owned(principal)
    cur = conn.execute(
        f"UPDATE webhooks SET deleted = 1 WHERE id = ? AND deleted = 0{where}",
        [webhook_id, *args],
    )
    if cur.rowcount == 0:
        raise ApiError.not_found(f"webhook {webhook_id} not found")
    conn.execute(
        "UPDATE deliveries SET state = 'dropped' WHERE webhook_id = ? AND state = 'pending'",
        (webhook_id,),
    )


def enqueue_event(
    conn: sqlite3.Connection, event: str, order: dict[str, Any], now: float
) -> tuple[int, ...]:
    """Add one delivery of ``event`` per interested subscriber that sees the order."""
    subs = conn.execute("SELECT id, events, owner FROM webhooks WHERE deleted = 0").fetchall()
    notified: list[int] = []
    ts = iso_utc(now)
    user_id = (order.get("Customer") or {}).get("UserId")
    for sub in subs:
        events = json.loads(sub["events"])
        if "*" not in events and event not in events:
            continue
        if not key_sees_order(sub["owner"], order["MerchantId"], user_id, order.get("AppId")):
            continue
        cur = conn.execute(
            "INSERT INTO deliveries (webhook_id, event, order_id, body, created_on,"
            " next_attempt_ts) VALUES (?, ?, ?, '', ?, ?)",
            (sub["id"], event, order["Id"], ts, now),
        )
        body = dumps({"Id": cur.lastrowid, "Event": event, "CreatedOn": ts, "Order": order})
        conn.execute("UPDATE deliveries SET body = ? WHERE id = ?", (body, cur.lastrowid))
        notified.append(sub["id"])
    return tuple(notified)


def pending_subscribers(conn: sqlite3.Connection) -> list[int]:
    """Ids of the subscribers that have pending deliveries (scanned once at start-up)."""
    rows = conn.execute(
        "SELECT DISTINCT webhook_id FROM deliveries WHERE state = 'pending' ORDER BY webhook_id"
    ).fetchall()
    return [r[0] for r in rows]


def subscriber(conn: sqlite3.Connection, webhook_id: int) -> Subscriber | None:
    row = conn.execute(
        "SELECT id, url, secret FROM webhooks WHERE id = ? AND deleted = 0", (webhook_id,)
    ).fetchone()
    return None if row is None else Subscriber(row["id"], row["url"], row["secret"])


def pending_deliveries(
    conn: sqlite3.Connection, webhook_id: int, after_id: int, limit: int = 100
) -> list[Delivery]:
    """The next pending deliveries of one subscriber, in order."""
    rows = conn.execute(
        "SELECT id, webhook_id, event, body, attempts, next_attempt_ts FROM deliveries"
        " WHERE webhook_id = ? AND state = 'pending' AND id > ? ORDER BY id LIMIT ?",
        (webhook_id, after_id, limit),
    ).fetchall()
    return [Delivery(*r) for r in rows]


def mark_delivered(conn: sqlite3.Connection, delivery_id: int, now: float) -> None:
    conn.execute(
        "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_on = ?"
        " WHERE id = ?",
        (iso_utc(now), delivery_id),
    )


def mark_failed_attempt(
    conn: sqlite3.Connection, delivery_id: int, error: str, next_ts: float | None
) -> bool:
    """Record a failed attempt; ``next_ts`` None means give up (state ``failed``).

    False if the delivery is no longer pending (its subscriber was deleted meanwhile).
    """
    cur = conn.execute(
        "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_ts = ?,"
        " state = ? WHERE id = ? AND state = 'pending'",
        (error[:500], next_ts or 0, "pending" if next_ts is not None else "failed", delivery_id),
    )
    return cur.rowcount == 1
