"""Read-only SQL for the dashboard: plain functions of a ``Conn`` (rows as dicts).

They run on the service's reader pool (``ingest.store.reader``), never on the event loop,
and are tested on both backends. Times are ISO-8601 UTC strings, so "today" and "last
24 h" are string comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edgeorder.ingest.store import groups
from edgeorder.ingest.store.database import Conn, dicts
from edgeorder.protocol import format_ts, utcnow

__all__ = [
    "FleetFilter",
    "Totals",
    "audit_rows",
    "buffer_rows",
    "device_detail",
    "fleet_rows",
    "fleet_totals",
    "hourly_counts",
    "timeline",
    "timeline_details",
]

Row = dict[str, Any]
FAILURE_STATES = ("failed", "rejected")


def day_start(now: datetime) -> str:
    """Midnight UTC of ``now``'s day, as stored timestamps are written."""
    return format_ts(now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0))


@dataclass(frozen=True)
class FleetFilter:
    """Fleet page filters: free-text ``q`` (id or name), online, env, only devices with failures."""

    q: str = ""
    online: bool | None = None
    env: str | None = None
    failures: bool = False
    tag: str | None = None
    site: str | None = None

    def matches(self, row: Row) -> bool:
        q = self.q.strip().lower()
        if q and q not in row["device_id"].lower() and q not in (row["name"] or "").lower():
            return False
        if self.online is not None and bool(row["online"]) != self.online:
            return False
        if self.env and row["env"] != self.env:
            return False
        if self.tag is not None and self.tag not in row.get("tags", ()):
            return False
        if self.site is not None and row.get("site", "") != self.site:
            return False
        return not (self.failures and not row["failures"])


_FLEET_SQL = """
SELECT d.device_id, d.name, d.env, d.enabled, d.simulated, d.config_version,
       COALESCE(p.online, 0) AS online, p.fw AS presence_fw, p.received_at AS presence_at,
       t.queue_depth, t.fw AS telemetry_fw, t.received_at AS telemetry_at,
       e.event_id AS last_event_id, e.trigger AS last_trigger, e.state AS last_event_state,
       e.received_at AS last_event_at,
       o.order_id AS last_order_id, o.state AS last_order_state, o.created_at AS last_order_at,
       (SELECT COUNT(*) FROM inbox f WHERE f.device_id = d.device_id
            AND f.state IN ('failed', 'rejected') AND f.received_at >= :since)
     + (SELECT COUNT(*) FROM rejections r WHERE r.device_id = d.device_id AND r.at >= :since
            AND (r.event_id IS NULL OR NOT EXISTS (SELECT 1 FROM inbox i2
                 WHERE i2.device_id = r.device_id AND i2.event_id = r.event_id)))
       AS failures
FROM devices d
LEFT JOIN presence p ON p.device_id = d.device_id
LEFT JOIN telemetry t ON t.device_id = d.device_id
LEFT JOIN inbox e ON e.id = (SELECT id FROM inbox WHERE device_id = d.device_id
                             ORDER BY received_at DESC, id DESC LIMIT 1)
LEFT JOIN orders o ON o.order_id = (SELECT order_id FROM orders WHERE device_id = d.device_id
                                    ORDER BY created_at DESC LIMIT 1)
{where}
ORDER BY d.device_id
"""


def fleet_rows(
    conn: Conn,
    flt: FleetFilter | None = None,
    *,
    device_id: str | None = None,
    now: datetime | None = None,
) -> list[Row]:
    """Every device (or one) with presence, telemetry, last event, last order, 24 h failures."""
    since = format_ts((now or utcnow()) - timedelta(hours=24))
    params: dict[str, Any] = {"since": since}
    where = ""
    if device_id is not None:  # (a NULL parameter has no type for PostgreSQL to compare)
        where, params["device_id"] = "WHERE d.device_id = :device_id", device_id
    rows = dicts(conn.execute(_FLEET_SQL.format(where=where), params))
    groups.attach(conn, rows)  # tags and site
    for row in rows:
        row["fw"] = row["presence_fw"] or row["telemetry_fw"] or ""
        seen = [row["presence_at"], row["telemetry_at"], row["last_event_at"]]
        row["last_seen"] = max((s for s in seen if s), default=None)
    return [row for row in rows if flt is None or flt.matches(row)]


@dataclass(frozen=True)
class Totals:
    online: int
    total: int
    orders_today: int
    rejected_today: int
    buffered: int


def fleet_totals(conn: Conn, *, now: datetime | None = None) -> Totals:
    """Online/total devices, orders and rejections since midnight UTC, pending order outbox."""
    today = day_start(now or utcnow())
    one = lambda sql, *args: int(conn.execute(sql, args).fetchone()[0])  # noqa: E731
    return Totals(
        online=one(
            "SELECT COUNT(*) FROM devices d JOIN presence p USING (device_id) WHERE p.online = 1"
        ),
        total=one("SELECT COUNT(*) FROM devices"),
        orders_today=one("SELECT COUNT(*) FROM orders WHERE created_at >= ?", today),
        rejected_today=one("SELECT COUNT(*) FROM rejections WHERE at >= ?", today),
        buffered=one("SELECT COUNT(*) FROM order_outbox WHERE state = 'pending'"),
    )


def device_detail(conn: Conn, device_id: str) -> Row | None:
    """The device's registry row plus its fleet columns, or None if unknown."""
    rows = fleet_rows(conn, device_id=device_id)
    if not rows:
        return None
    reg = conn.execute(
        "SELECT mapping, allow_parallel, cancel_window_s, created_at, updated_at "
        "FROM devices WHERE device_id = ?",
        (device_id,),
    ).fetchone()
    rows[0].update(
        zip(
            ("mapping", "allow_parallel", "cancel_window_s", "created_at", "updated_at"),
            reg,
            strict=True,
        )
    )
    reported = conn.execute(
        "SELECT version FROM config_reported WHERE device_id = ?", (device_id,)
    ).fetchone()
    rows[0]["config_reported"] = None if reported is None else reported[0]
    return rows[0]


def timeline(conn: Conn, device_id: str, limit: int = 50) -> list[Row]:
    """The device's latest events, newest first, each with ``statuses`` (oldest first) and
    its ``order`` (current state), from inbox, status_history and orders."""
    events = dicts(
        conn.execute(
            "SELECT i.id, i.event_id, i.kind, i.trigger, i.seq, i.ts, i.received_at, i.action, "
            "i.state, i.order_id, i.reason, o.state AS order_state, o.sku, o.quantity, o.test "
            "FROM inbox i LEFT JOIN orders o ON o.inbox_id = i.id "
            "WHERE i.device_id = ? ORDER BY i.received_at DESC, i.id DESC LIMIT ?",
            (device_id, limit),
        )
    )
    timeline_details(conn, device_id, events)
    return events


def timeline_details(conn: Conn, device_id: str, events: list[Row]) -> None:
    """Add ``statuses`` (oldest first) to each of ``device_id``'s ``events``, in place."""
    ids = [e["event_id"] for e in events]
    history: dict[str, list[Row]] = {eid: [] for eid in ids}
    if ids:
        marks = ",".join("?" * len(ids))
        for row in dicts(
            conn.execute(
                f"SELECT event_id, state, order_id, reason, source, at FROM status_history "
                f"WHERE device_id = ? AND event_id IN ({marks}) ORDER BY at, id",
                (device_id, *ids),
            )
        ):
            history[row["event_id"]].append(row)
    for event in events:
        event["statuses"] = history[event["event_id"]]


def audit_rows(conn: Conn, device_id: str | None = None, limit: int = 20) -> list[Row]:
    """Latest audit entries (for one device, or all), newest first."""
    return dicts(
        conn.execute(
            "SELECT at, actor, action, device_id, event_id, detail FROM audit "
            f"{'WHERE device_id = ? ' if device_id is not None else ''}"
            "ORDER BY at DESC, id DESC LIMIT ?",
            (device_id, limit) if device_id is not None else (limit,),
        )
    )


def buffer_rows(conn: Conn, limit: int = 500) -> list[Row]:
    """Order-outbox rows still waiting for the platform (pending), oldest first."""
    return dicts(
        conn.execute(
            "SELECT id, device_id, event_id, op, sku, quantity, test, target_order_id, attempts, "
            "next_attempt_at, last_error, created_at, updated_at FROM order_outbox "
            "WHERE state = 'pending' ORDER BY created_at, id LIMIT ?",
            (limit,),
        )
    )


def hourly_counts(
    conn: Conn, *, now: datetime | None = None, hours: int = 24
) -> list[tuple[str, int, int]]:
    """(hour start, orders, rejections) for each of the last ``hours`` hours, oldest first."""
    end = (now or utcnow()).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    since = format_ts(start)
    orders = dict(
        conn.execute(
            "SELECT substr(created_at, 1, 13), COUNT(*) FROM orders WHERE created_at >= ? "
            "GROUP BY 1",
            (since,),
        ).fetchall()
    )
    rejected = dict(
        conn.execute(
            "SELECT substr(at, 1, 13), COUNT(*) FROM rejections WHERE at >= ? GROUP BY 1", (since,)
        ).fetchall()
    )
    out: list[tuple[str, int, int]] = []
    for n in range(hours):
        hour = format_ts(start + timedelta(hours=n))[:13]
        out.append((hour, int(orders.get(hour, 0)), int(rejected.get(hour, 0))))
    return out
