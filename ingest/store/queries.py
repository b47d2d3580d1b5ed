"""Read-only SQL of the REST API (``/api/events``, ``/api/orders``, ``/api/buffer``) and of the
health check. Plain functions of a ``Conn`` (rows as dicts), run on the service's
reader pool.
"""

from __future__ import annotations

from typing import Any

from edgeorder.ingest.store.database import Conn, dicts

__all__ = [
    "DEVICE_STATES",
    "device_states",
    "enabled_devices_with_fw",
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


def recent_events(conn: Conn, *, device_id: str | None, limit: int) -> list[Row]:
    """The newest inbox rows (of one device, or of all)."""
    where, params = _by_device(device_id)
    sql = f"SELECT {_EVENT_COLUMNS} FROM inbox {where} ORDER BY id DESC LIMIT ?"
    return dicts(conn.execute(sql, [*params, limit]))


def recent_orders(conn: Conn, *, device_id: str | None, limit: int) -> list[Row]:
    """The newest orders (of one device, or of all)."""
    where, params = _by_device(device_id)
    sql = f"SELECT * FROM orders {where} ORDER BY created_at DESC LIMIT ?"
    return dicts(conn.execute(sql, [*params, limit]))


def event_with_history(conn: Conn, device_id: str, event_id: str) -> Row | None:
    """One inbox row with ``history``: its statuses, oldest first; None if unknown."""
    found = dicts(
        conn.execute(
            "SELECT * FROM inbox WHERE device_id = ? AND event_id = ?", [device_id, event_id]
        )
    )
    if not found:
        return None
    event = found[0]
    event["history"] = dicts(
        conn.execute(
            "SELECT state, order_id, reason, source, at FROM status_history "
            "WHERE device_id = ? AND event_id = ? ORDER BY id",
            [device_id, event_id],
        )
    )
    return event


_BUFFER_COLUMNS = (
    "id, inbox_id, device_id, event_id, op, sku, quantity, test, target_order_id, state, "
    "attempts, next_attempt_at, last_error, created_at, updated_at"
)


def pending_buffer(conn: Conn, *, limit: int) -> list[Row]:
    """Order-outbox rows still waiting for the platform, the next due first (not the workers'
    leases: how rows are shared out is no one's business but theirs)."""
    return dicts(
        conn.execute(
            f"SELECT {_BUFFER_COLUMNS} FROM order_outbox WHERE state = 'pending' "
            "ORDER BY next_attempt_at LIMIT ?",
            [limit],
        )
    )


def oldest_pending_order(conn: Conn) -> str | None:
    """``created_at`` of the oldest order still waiting for the platform (None: none waits)."""
    row = conn.execute(
        "SELECT MIN(created_at) FROM order_outbox WHERE state = 'pending'"
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


DEVICE_STATES = ("online", "offline", "disabled")
"""The ``state`` label values of ``edgeorder_devices``: a disabled device counts as disabled
whatever its presence says."""


def device_states(conn: Conn) -> dict[str, int]:
    """How many registered devices are online, offline and disabled (every state, 0 too)."""
    rows = conn.execute(
        "SELECT CASE WHEN d.enabled = 0 THEN 'disabled' "
        "WHEN COALESCE(p.online, 0) = 1 THEN 'online' ELSE 'offline' END AS state, COUNT(*) "
        "FROM devices d LEFT JOIN presence p ON p.device_id = d.device_id "
        "GROUP BY 1"
    ).fetchall()
    counts = dict.fromkeys(DEVICE_STATES, 0)
    counts.update({str(r[0]): int(r[1]) for r in rows})
    return counts


def enabled_devices_with_fw(conn: Conn) -> list[Row]:
    """Every enabled device: id, name, mapping (JSON) and the firmware of its last presence
    ('' before its first); what Home Assistant discovery describes."""
    return dicts(
        conn.execute(
            "SELECT d.device_id, d.name, d.mapping, COALESCE(p.fw, '') AS fw "
            "FROM devices d LEFT JOIN presence p ON p.device_id = d.device_id "
            "WHERE d.enabled = 1 ORDER BY d.device_id"
        )
    )


def _by_device(device_id: str | None) -> tuple[str, list[Any]]:
    return ("WHERE device_id = ?", [device_id]) if device_id else ("", [])
