"""The order buffer as operators act on it: retry a pending order now, discard it, and the
statuses their actions cause.

Plain functions of a connection of either backend (a ``sqlite_utils.Database``'s too). The
operator's functions run their own transaction (a savepoint inside the writer's group commit),
with an ``audit`` row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from edgeorder import protocol as p
from edgeorder.ingest.store import evendi_assignments
from edgeorder.ingest.store.database import Conn, handle
from edgeorder.ingest.store.ledger import StatusOut
from edgeorder.kit import transaction

if TYPE_CHECKING:
    import sqlite_utils

    Db = Conn | sqlite_utils.Database

__all__ = [
    "DISCARDED",
    "buffer_depth",
    "discard",
    "last_history_id",
    "operator_statuses",
    "retry_now",
]

DISCARDED = "discarded by an operator"


def retry_now(db: Db, outbox_id: int, *, actor: str = "system") -> bool:
    """Make a pending row due at once; True if it was pending. Then wake the worker with
    ``bus.publish(Notice("outbox"))``."""
    now = p.format_ts(p.utcnow())
    with transaction(handle(db)) as conn:
        pending = conn.execute(
            "UPDATE order_outbox SET next_attempt_at = ?, updated_at = ? "
            "WHERE id = ? AND state = 'pending' RETURNING id",
            [now, now, outbox_id],
        ).fetchone()
        if pending is not None:
            _audit(conn, actor, "outbox.retry_now", outbox_id, now)
        return pending is not None


def discard(db: Db, outbox_id: int, *, actor: str = "system") -> bool:
    """Give up a pending row: no order will be made; the event becomes ``failed``."""
    now = p.format_ts(p.utcnow())
    with transaction(handle(db)) as conn:
        row = conn.execute(
            "UPDATE order_outbox SET state = 'discarded', updated_at = ? "
            "WHERE id = ? AND state = 'pending' RETURNING inbox_id",
            [now, outbox_id],
        ).fetchone()
        if row is None:
            return False
        event = conn.execute(
            "UPDATE inbox SET state = 'failed', reason = ?, updated_at = ? WHERE id = ? "
            "RETURNING device_id, event_id",
            [DISCARDED, now, row[0]],
        ).fetchone()
        evendi_assignments.abandon(
            conn,
            event[1],
            f"{DISCARDED}; a closeOrder call had started: check the order on e-vendi, "
            "then requeue it",
        )
        # source 'operator': the running service publishes it to the device (operator_statuses)
        conn.execute(
            "INSERT INTO status_history (device_id, event_id, state, reason, source, at) "
            "VALUES (?, ?, 'failed', ?, 'operator', ?)",
            [event[0], event[1], DISCARDED, now],
        )
        _audit(conn, actor, "outbox.discard", outbox_id, now)
        return True


def operator_statuses(conn: Conn, after_id: int) -> tuple[int, list[StatusOut]]:
    """Statuses operators caused (discards) after history row ``after_id``, to publish; and the
    last row id seen."""
    rows = conn.execute(
        "SELECT id, device_id, event_id, state, order_id, reason, at FROM status_history "
        "WHERE id > ? AND source = 'operator' ORDER BY id",
        [after_id],
    ).fetchall()
    last = last_history_id(conn)
    outs = [
        StatusOut(
            r[1],
            p.Status(
                event_id=r[2],
                state=p.State(r[3]),
                order_id=r[4],
                reason=r[5],
                ts=datetime.fromisoformat(r[6]),
            ),
            history_ids=(r[0],),
        )
        for r in rows
    ]
    return max(last, after_id), outs


def last_history_id(conn: Conn) -> int:
    """The newest ``status_history`` row id (0 when empty)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM status_history").fetchone()[0])


def buffer_depth(conn: Conn) -> int:
    """Pending order-outbox rows."""
    row = conn.execute("SELECT COUNT(*) FROM order_outbox WHERE state = 'pending'").fetchone()
    return int(row[0])


def _audit(conn: Conn, actor: str, action: str, outbox_id: int, now: str) -> None:
    ids = conn.execute(
        "SELECT device_id, event_id FROM order_outbox WHERE id = ?", [outbox_id]
    ).fetchone()
    conn.execute(
        "INSERT INTO audit (at, actor, action, device_id, event_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [now, actor, action, ids[0], ids[1], str(outbox_id)],
    )
