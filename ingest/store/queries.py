"""Read-only SQL of the REST API (``/api/events``, ``/api/orders``, ``/api/buffer``) and of the
health check. Plain functions of a ``sqlite3.Connection`` (rows as dicts), run on the service's
reader pool.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = [
    "event_with_history",
    "oldest_pending_order",
    "pending_buffer",
    "recent_events",
    "recent_orders",
]

Row = dict[str, Any]

_EVENT_COLUMNS = (
    "id, device_id, event_id, kind, trigger, seq, ts, received_at, action, state, order_id, "
    "reason, updated_at"
)


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def recent_events(conn: sqlite3.Connection, *, device_id: str | None, limit: int) -> list[Row]:
    """The newest inbox rows (of one device, or of all)."""
    where, params = _by_device(device_id)
    sql = f"SELECT {_EVENT_COLUMNS} FROM inbox {where} ORDER BY id DESC LIMIT ?"
    return _rows(conn.execute(sql, [*params, limit]))


def recent_orders(conn: sqlite3.Connection, *, device_id: str | None, limit: int) -> list[Row]:
    """The newest orders (of one device, or of all)."""
    where, params = _by_device(device_id)
    sql = f"SELECT * FROM orders {where} ORDER BY created_at DESC LIMIT ?"
    return _rows(conn.execute(sql, [*params, limit]))


def event_with_history(conn: sqlite3.Connection, device_id: str, event_id: str) -> Row | None:
    """One inbox row with ``history``: its statuses, oldest first; None if unknown."""
    found = _rows(
        conn.execute(
            "SELECT * FROM inbox WHERE device_id = ? AND event_id = ?", [device_id, event_id]
        )
    )
    if not found:
        return None
    event = found[0]
    event["history"] = _rows(
        conn.execute(
            "SELECT state, order_id, reason, source, at FROM status_history "
            "WHERE device_id = ? AND event_id = ? ORDER BY id",
            [device_id, event_id],
        )
    )
    return event


def pending_buffer(conn: sqlite3.Connection, *, limit: int) -> list[Row]:
    """Order-outbox rows still waiting for the platform, the next due first."""
    return _rows(
        conn.execute(
            "SELECT * FROM order_outbox WHERE state = 'pending' ORDER BY next_attempt_at LIMIT ?",
            [limit],
        )
    )


def oldest_pending_order(conn: sqlite3.Connection) -> str | None:
    """``created_at`` of the oldest order still waiting for the platform (None: none waits)."""
    row = conn.execute(
        "SELECT MIN(created_at) FROM order_outbox WHERE state = 'pending'"
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _by_device(device_id: str | None) -> tuple[str, list[Any]]:
    return ("WHERE device_id = ?", [device_id]) if device_id else ("", [])
