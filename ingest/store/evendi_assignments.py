"""e-vendi orders assigned to devices: what a press finalizes, each exactly once.

e-vendi's API can only finalize an order that already exists (``closeOrder``). The operator
(REST API, ``edgeorder evendi``, or the device page) assigns pending e-vendi orders to a
device; a press claims the oldest one for its SKU and the outbox worker closes it.

The claim is keyed by the press's ``event_id`` (``UNIQUE``): a retried attempt, a redelivered
event or a restart finds the order the press already claimed and never takes a second one.
``attempts`` is raised in the same transaction as each claim, *before* the call, so a retry
knows an earlier ``closeOrder`` may have reached e-vendi even when the process crashed
before recording its answer.

States: ``pending`` (waiting for a press) -> ``claimed`` (a press is closing it) ->
``closed`` (e-vendi confirmed) or ``failed`` (refused, or its fate is unclear; an operator
checks e-vendi and may ``requeue`` it). A ``pending`` one can be ``withdrawn``.

Operator functions take a connection and run their own transaction (with an ``audit`` row);
the worker's functions run inside the caller's (the writer's) transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from edgeorder import protocol as p
from edgeorder.ingest.store.database import Conn, dicts
from edgeorder.kit import transaction

__all__ = [
    "STATES",
    "AssignmentConflictError",
    "AssignmentError",
    "Claim",
    "UnknownAssignmentError",
    "UnknownDeviceError",
    "abandon",
    "assign",
    "claim",
    "get_assignment",
    "list_assignments",
    "mark_closed",
    "mark_failed",
    "requeue",
    "withdraw",
]

AssignmentState = Literal["pending", "claimed", "closed", "failed", "withdrawn"]
STATES: tuple[str, ...] = get_args(AssignmentState)
ORDER_ID_MAX = 200
_COLUMNS = (
    "id, device_id, sku, order_id, note, state, event_id, attempts, last_error, created_by, "
    "created_at, claimed_at, closed_at, updated_at"
)


class AssignmentError(ValueError):
    """An assignment operation that cannot be done as asked."""


class UnknownAssignmentError(AssignmentError, KeyError):
    """No assignment with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown assignment"


class UnknownDeviceError(AssignmentError, KeyError):
    """The device to assign to is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown device"


class AssignmentConflictError(AssignmentError):
    """The e-vendi order is already assigned, or the assignment is not in a state that allows
    the operation."""


@dataclass(frozen=True)
class Claim:
    """The order a press finalizes. ``attempts_before``: ``closeOrder`` calls started for it
    before this one (more than 0: an earlier call may have closed it already)."""

    order_id: str
    attempts_before: int
    state: str = "claimed"


def _now() -> str:
    return p.format_ts(p.utcnow())


def _audit(conn: Conn, actor: str, action: str, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, device_id, event_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [_now(), actor, action, row["device_id"], row["event_id"], f"order {row['order_id']}"],
    )


def _clean(value: str, what: str, max_len: int) -> str:
    value = value.strip()
    if not value or len(value) > max_len or not value.isprintable():
        raise AssignmentError(f"{what} must be 1-{max_len} printable characters")
    return value


# --- operator side ---------------------------------------------------------------------------


def assign(
    conn: Conn,
    device_id: str,
    order_id: str,
    *,
    sku: str | None = None,
    note: str = "",
    actor: str = "system",
) -> dict[str, Any]:
    """Queue e-vendi order ``order_id`` for ``device_id`` (for presses of ``sku``, or of any
    SKU when None). An order is assigned once (closing it twice means nothing); only a
    withdrawn one can be assigned again (the audit log keeps its history)."""
    order_id = _clean(order_id, "orderId", ORDER_ID_MAX)
    sku = _clean(sku, "sku", 100) if sku is not None else None
    if len(note) > 500:
        raise AssignmentError("note must be at most 500 characters")
    now = _now()
    with transaction(conn):
        if not conn.execute("SELECT 1 FROM devices WHERE device_id = ?", [device_id]).fetchone():
            raise UnknownDeviceError(f"no device {device_id!r}")
        taken = conn.execute(
            "SELECT id, device_id, state FROM evendi_assignments WHERE order_id = ?", [order_id]
        ).fetchone()
        if taken is not None and taken[2] != "withdrawn":
            raise AssignmentConflictError(
                f"e-vendi order {order_id!r} is already assigned to {taken[1]} ({taken[2]})"
            )
        if taken is not None:  # withdrawn earlier: queued again, at the back of the queue
            conn.execute("DELETE FROM evendi_assignments WHERE id = ?", [taken[0]])
        cursor = conn.execute(
            "INSERT INTO evendi_assignments (device_id, sku, order_id, note, created_by, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [device_id, sku, order_id, note, actor, now, now],
        )
        row = get_assignment(conn, int(cursor.fetchone()[0]))
        _audit(conn, actor, "evendi.assign", row)
    return row


def get_assignment(conn: Conn, assignment_id: int) -> dict[str, Any]:
    """One assignment as a dict; ``UnknownAssignmentError`` if there is none."""
    found = dicts(
        conn.execute(f"SELECT {_COLUMNS} FROM evendi_assignments WHERE id = ?", [assignment_id])
    )
    if not found:
        raise UnknownAssignmentError(f"no e-vendi assignment {assignment_id}")
    return found[0]


def list_assignments(
    conn: Conn,
    *,
    device_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Assignments, newest first, optionally of one device and/or in one state."""
    where, params = [], []
    if device_id is not None:
        where.append("device_id = ?")
        params.append(device_id)
    if state is not None:
        if state not in STATES:
            raise AssignmentError(f"state must be one of {', '.join(STATES)}")
        where.append("state = ?")
        params.append(state)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return dicts(
        conn.execute(
            f"SELECT {_COLUMNS} FROM evendi_assignments {clause} ORDER BY id DESC LIMIT ?",
            [*params, max(1, min(limit, 1000))],
        )
    )


def _move(
    conn: Conn,
    assignment_id: int,
    *,
    allowed: str,
    sets: str,
    action: str,
    actor: str,
) -> dict[str, Any]:
    with transaction(conn):
        row = get_assignment(conn, assignment_id)
        if row["state"] != allowed:
            raise AssignmentConflictError(
                f"assignment {assignment_id} is {row['state']}, not {allowed}"
            )
        conn.execute(
            f"UPDATE evendi_assignments SET {sets}, updated_at = ? WHERE id = ?",
            [_now(), assignment_id],
        )
        _audit(conn, actor, action, row)
        return get_assignment(conn, assignment_id)


def withdraw(conn: Conn, assignment_id: int, *, actor: str = "system") -> dict[str, Any]:
    """Take a ``pending`` order off the device's queue (no press will close it)."""
    return _move(
        conn,
        assignment_id,
        allowed="pending",
        sets="state = 'withdrawn'",
        action="evendi.withdraw",
        actor=actor,
    )


def requeue(conn: Conn, assignment_id: int, *, actor: str = "system") -> dict[str, Any]:
    """Put a ``failed`` order back in the queue, after the operator checked it on e-vendi is
    still open; the next press of the device claims it afresh."""
    return _move(
        conn,
        assignment_id,
        allowed="failed",
        sets="state = 'pending', event_id = NULL, attempts = 0, claimed_at = NULL",
        action="evendi.requeue",
        actor=actor,
    )


# --- the outbox worker's side (inside the writer's transaction) -------------------------------


def claim(
    conn: Conn, *, device_id: str, sku: str | None, event_id: str, now: datetime
) -> Claim | None:
    """The order press ``event_id`` finalizes, counting this attempt; None when the device has
    no pending order for ``sku``. The same press always gets the same order."""
    at = p.format_ts(now)
    mine = conn.execute(
        "UPDATE evendi_assignments SET updated_at = ?, "
        "attempts = attempts + CASE WHEN state = 'claimed' THEN 1 ELSE 0 END "
        "WHERE event_id = ? RETURNING order_id, attempts, state",
        [at, event_id],
    ).fetchone()
    if mine is not None:
        before = mine[1] - 1 if mine[2] == "claimed" else mine[1]
        return Claim(mine[0], before, mine[2])
    taken = conn.execute(
        "UPDATE evendi_assignments SET state = 'claimed', event_id = ?, attempts = 1, "
        "claimed_at = ?, updated_at = ? WHERE id = (SELECT id FROM evendi_assignments "
        "WHERE device_id = ? AND state = 'pending' AND (sku IS NULL OR sku = ?) "
        "ORDER BY id LIMIT 1) RETURNING order_id",
        [event_id, at, at, device_id, sku],
    ).fetchone()
    return None if taken is None else Claim(taken[0], 0)


def mark_closed(conn: Conn, event_id: str, now: datetime) -> None:
    """e-vendi closed the order press ``event_id`` claimed."""
    at = p.format_ts(now)
    conn.execute(
        "UPDATE evendi_assignments SET state = 'closed', closed_at = ?, last_error = NULL, "
        "updated_at = ? WHERE event_id = ? AND state = 'claimed'",
        [at, at, event_id],
    )


def mark_failed(conn: Conn, event_id: str, reason: str, now: datetime) -> None:
    """The close was refused, or its outcome is unknown: out of the queue until an operator
    checks the order on e-vendi and requeues it."""
    conn.execute(
        "UPDATE evendi_assignments SET state = 'failed', last_error = ?, updated_at = ? "
        "WHERE event_id = ? AND state = 'claimed'",
        [reason[:2000], p.format_ts(now), event_id],
    )


def abandon(conn: Conn, event_id: str, reason: str) -> None:
    """The press was given up (an operator discarded its buffered order). Its claim had
    started a ``closeOrder`` call, which may have reached e-vendi: ``failed`` for a check."""
    mark_failed(conn, event_id, reason, p.utcnow())
