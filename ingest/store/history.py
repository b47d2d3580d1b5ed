"""A device's whole history, a page at a time, and the rows of the CSV exports.

Keyset paging, never OFFSET: events are ordered by ``(received_at, id)`` (the timeline's
order), a page is asked for relative to an inbox row id (``before``: older than it, ``after``:
newer than it); the cursor row's ``received_at`` is read first, and the page walks the index
from there, so a page costs the same however deep it is. Orders are exported in
``(created_at, order_id)`` order with the same kind of cursor. Plain functions of a ``Conn``,
run on the reader pool; the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgeorder.ingest.store.dashboard import timeline_details
from edgeorder.ingest.store.database import Conn, dicts

__all__ = [
    "EVENT_EXPORT_COLUMNS",
    "ORDER_EXPORT_COLUMNS",
    "EventsPage",
    "Window",
    "device_events",
    "event_export_batch",
    "events_page",
    "order_export_batch",
]

Row = dict[str, Any]

EVENT_EXPORT_COLUMNS = (
    "id", "device_id", "event_id", "kind", "trigger", "seq", "ts", "received_at", "state",
    "order_id", "reason", "updated_at",
)  # fmt: skip
ORDER_EXPORT_COLUMNS = (
    "order_id", "device_id", "event_id", "sku", "quantity", "amount", "currency", "test",
    "state", "platform_status", "created_at", "updated_at",
)  # fmt: skip


@dataclass(frozen=True)
class EventsPage:
    """Events newest first; ``older``/``newer``: the cursor (an inbox id) for the next page
    that way, None when there is nothing more that way."""

    events: list[Row]
    older: int | None
    newer: int | None


_PAGE_SQL = """
SELECT i.id, i.device_id, i.event_id, i.kind, i.trigger, i.seq, i.ts, i.received_at,
       i.action, i.state, i.order_id, i.reason, i.updated_at,
       o.state AS order_state, o.sku, o.quantity, o.test
FROM inbox i LEFT JOIN orders o ON o.inbox_id = i.id
WHERE i.device_id = :device_id {where}
ORDER BY i.received_at {order}, i.id {order} LIMIT :n
"""
# Row values, so both SQLite and PostgreSQL walk the (device_id, received_at[, id]) index from
# the cursor instead of scanning the device's rows (an OR of the two halves does not).
_OLDER = "AND (i.received_at, i.id) < (:at, :cursor)"
_NEWER = "AND (i.received_at, i.id) > (:at, :cursor)"


def _cursor_at(conn: Conn, device_id: str, cursor: int) -> str | None:
    row = conn.execute(
        "SELECT received_at FROM inbox WHERE id = ? AND device_id = ?", [cursor, device_id]
    ).fetchone()
    return None if row is None else str(row[0])


def events_page(
    conn: Conn,
    device_id: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
    details: bool = True,
) -> EventsPage:
    """One page of ``device_id``'s events, newest first: the newest ones, those older than
    inbox row ``before``, or those just newer than ``after`` (``before`` wins; when fewer
    than ``limit`` are newer than ``after``, the newest page). An unknown cursor gives an
    empty page. ``details`` adds each event's ``statuses`` and order as the timeline shows."""
    params: dict[str, Any] = {"device_id": device_id, "n": limit + 1}
    cursor = before if before is not None else after
    if cursor is not None:
        params["cursor"], params["at"] = cursor, _cursor_at(conn, device_id, cursor)
        if params["at"] is None:  # not an event of this device
            return EventsPage([], None, None)
    if before is None and after is not None:
        rows = dicts(conn.execute(_PAGE_SQL.format(where=_NEWER, order="ASC"), params))
        if len(rows) <= limit:
            return events_page(conn, device_id, limit=limit, details=details)
        rows = rows[:limit][::-1]
        page = EventsPage(rows, rows[-1]["id"], rows[0]["id"])
    else:
        where = _OLDER if before is not None else ""
        rows = dicts(conn.execute(_PAGE_SQL.format(where=where, order="DESC"), params))
        older = rows[limit - 1]["id"] if len(rows) > limit else None
        rows = rows[:limit]
        newer = rows[0]["id"] if before is not None and rows else None
        page = EventsPage(rows, older, newer)
    if details:
        timeline_details(conn, device_id, page.events)
    return page


def device_events(
    conn: Conn, device_id: str, *, before: int | None, after: int | None, limit: int
) -> EventsPage | None:
    """``events_page`` without the timeline's details, or None if the device is unknown."""
    if conn.execute("SELECT 1 FROM devices WHERE device_id = ?", [device_id]).fetchone() is None:
        return None
    return events_page(conn, device_id, before=before, after=after, limit=limit, details=False)


@dataclass(frozen=True)
class Window:
    """Filters of an export: one device (or all), ``received_at``/``created_at`` in
    ``[start, end)`` (ISO-8601 UTC strings, as stored; None: unbounded)."""

    device_id: str | None = None
    start: str | None = None
    end: str | None = None

    def where(self, time_column: str, params: dict[str, Any]) -> str:
        clauses = []
        if self.device_id is not None:
            clauses.append("device_id = :device_id")
            params["device_id"] = self.device_id
        if self.start is not None:
            clauses.append(f"{time_column} >= :start")
            params["start"] = self.start
        if self.end is not None:
            clauses.append(f"{time_column} < :end")
            params["end"] = self.end
        return " AND ".join(clauses)


def event_export_batch(
    conn: Conn, window: Window, cursor: tuple[str, int] | None, n: int
) -> list[Row]:
    """The next ``n`` events of ``window`` after ``cursor`` (``(received_at, id)`` of the last
    row exported; None: from the start), oldest first."""
    return _export_batch(
        conn, "inbox", EVENT_EXPORT_COLUMNS, ("received_at", "id"), window, cursor, n
    )


def order_export_batch(
    conn: Conn, window: Window, cursor: tuple[str, str] | None, n: int
) -> list[Row]:
    """The next ``n`` orders of ``window`` after ``cursor`` (``(created_at, order_id)``),
    oldest first."""
    return _export_batch(
        conn, "orders", ORDER_EXPORT_COLUMNS, ("created_at", "order_id"), window, cursor, n
    )


def _export_batch(
    conn: Conn,
    table: str,
    columns: Sequence[str],
    key: tuple[str, str],
    window: Window,
    cursor: tuple[str, Any] | None,
    n: int,
) -> list[Row]:
    """Keyset page of an export: rows of ``table`` in ``window`` after ``cursor``, ordered by
    ``key`` (a time column, then a unique id). Table and column names are this module's own."""
    at, ident = key
    params: dict[str, Any] = {"n": n}
    clauses = [window.where(at, params)]
    if cursor is not None:
        params["at"], params["id"] = cursor
        clauses.append(f"({at}, {ident}) > (:at, :id)")
    where = " AND ".join(c for c in clauses if c)
    return dicts(
        conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} "
            f"{'WHERE ' + where if where else ''} ORDER BY {at}, {ident} LIMIT :n",
            params,
        )
    )
