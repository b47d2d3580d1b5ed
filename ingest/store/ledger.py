"""The exactly-once ledger: inbox, order outbox, orders and status history in SQL.

Every function here takes a connection (``Conn``: SQLite's, or PostgreSQL's through
``ingest.store.pg``) inside the caller's transaction (the single writer's group commit) and
returns the statuses to publish once that commit is done. No function here commits, sleeps or
talks to the network. The same functions run on both backends.

Across several workers on one PostgreSQL, the writer has locked the event's device before
``record_event`` runs (``ingest.store.pg.lock_keys``), so the throttle and ``cancel_last``
read the device's orders while no other worker can add one; the inbox's UNIQUE (device_id,
event_id) makes a redelivery that reaches another worker a duplicate; order-outbox rows are
leased (``claim_due``) so one worker at a time calls the platform for a row.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edgeorder import protocol as p
from edgeorder.ingest.domain import rules
from edgeorder.ingest.domain.devices import Device
from edgeorder.ingest.store.database import Conn, dialect

__all__ = [
    "EventOutcome",
    "OutboxRow",
    "StatusOut",
    "apply_order_state",
    "confirm_published",
    "due_outbox",
    "event_hash",
    "mark_cancelled",
    "mark_created",
    "mark_failed",
    "mark_rejected",
    "mark_transient",
    "record_event",
    "record_rejection",
    "settle_order",
    "unconfirmed_statuses",
]


@dataclass(frozen=True)
class StatusOut:
    """One status to publish (retained) on ``device_id``'s status topic; ``history_ids`` are
    the ``status_history`` rows its confirmed delivery settles (none for a mere repeat)."""

    device_id: str
    status: p.Status
    history_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EventOutcome:
    """What recording one event did; ``duplicate`` means nothing was written."""

    status: StatusOut
    duplicate: bool = False
    rejection_code: str | None = None
    outbox_created: bool = False
    rejection_reason: str | None = None
    """Why, with ``rejection_code``: the status may carry another reason (a refused copy of a
    recorded event is answered with that event's own status)."""


@dataclass(frozen=True)
class OutboxRow:
    """One due order-outbox row, as the worker needs it."""

    id: int
    inbox_id: int
    device_id: str
    event_id: str
    op: str
    sku: str | None
    quantity: int | None
    test: bool
    target_order_id: str | None
    attempts: int
    event_ts: str
    queued_at: str | None = None
    """When ingest recorded the row (its own clock): no order for it can be older."""
    claims: int = 0
    """Leases taken on the row, this one included: more than one, and an earlier worker may
    have called the platform for it already."""


def event_hash(event: p.Event) -> str:
    """sha256 of the canonical JSON of ``event`` (so whitespace or unknown fields don't count)."""
    return _digest(p.encode(event))


def _digest(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def _ts(now: datetime) -> str:
    return p.format_ts(now)


def _status(
    device_id: str,
    event_id: str | None,
    state: p.State,
    now: datetime,
    *,
    order_id: str | None = None,
    reason: str | None = None,
) -> StatusOut:
    status = p.Status(
        event_id=event_id,
        state=state,
        order_id=order_id,
        reason=reason[:500] if reason else None,
        ts=now,
    )
    return StatusOut(device_id, status)


def _history(conn: Conn, out: StatusOut, source: str, at: str | None = None) -> StatusOut:
    """Record ``out`` (unconfirmed until its publish is acknowledged); ``out`` with its row.
    ``at``: ``out.status.ts`` already formatted by the caller (saves formatting it again)."""
    s = out.status
    row = conn.execute(
        "INSERT INTO status_history (device_id, event_id, state, order_id, reason, source, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [out.device_id, s.event_id, s.state.value, s.order_id, s.reason, source, at or _ts(s.ts)],
    ).fetchone()
    return StatusOut(out.device_id, s, (int(row[0]),))


def record_rejection(
    conn: Conn,
    device_id: str | None,
    event_id: str | None,
    code: str,
    detail: str,
    now: datetime,
) -> StatusOut | None:
    """A ``rejections`` row; the status to publish when the device can be addressed.

    When ``event_id`` names an event this device already recorded (a refused copy of it: the id
    reused with another payload, or an undecodable message that carries it), the copy is
    refused but the press keeps its outcome: the status is the recorded event's own, never a
    ``rejected`` that would settle an order in progress as refused on the device."""
    _insert_rejection(conn, device_id, event_id, code, detail, now)
    if device_id is None:
        return None
    if event_id is not None:
        known = conn.execute(
            "SELECT state, order_id, reason FROM inbox WHERE device_id = ? AND event_id = ?",
            [device_id, event_id],
        ).fetchone()
        if known is not None:
            state, order_id, why = known
            return _status(device_id, event_id, p.State(state), now, order_id=order_id, reason=why)
    out = _status(device_id, event_id, p.State.REJECTED, now, reason=detail)
    return _history(conn, out, "ingest")


def _insert_rejection(
    conn: Conn, device_id: str | None, event_id: str | None, code: str, detail: str, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO rejections (device_id, event_id, code, detail, at) VALUES (?, ?, ?, ?, ?)",
        [device_id, event_id, code, detail[:2000], _ts(now)],
    )


def _sku_in_flight(conn: Conn, device_id: str, sku: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE device_id = ? AND sku = ? "
        "  AND state NOT IN ('delivered', 'cancelled', 'failed') AND settled = 0) "
        "OR EXISTS (SELECT 1 FROM order_outbox WHERE device_id = ? AND sku = ? "
        "  AND op = 'create' AND state = 'pending')",
        [device_id, sku, device_id, sku],
    ).fetchone()
    return bool(row[0])


def _last_order(conn: Conn, device_id: str) -> rules.CancelTarget | None:
    """The device's latest order whatever its state, or the create of a later press still
    pending (its order is not placed yet): what ``cancel_last`` is about."""
    order = conn.execute(
        "SELECT o.order_id, o.event_id, o.created_at, o.inbox_id, "
        "  o.state IN ('ordered', 'paid') AND o.settled = 0 AND NOT EXISTS ("
        "    SELECT 1 FROM order_outbox c WHERE c.device_id = o.device_id AND c.op = 'cancel' "
        "    AND c.target_order_id = o.order_id AND c.state IN ('pending', 'done')) "
        "FROM orders o WHERE o.device_id = ? "
        "ORDER BY o.created_at DESC, o.inbox_id DESC LIMIT 1",
        [device_id],
    ).fetchone()
    placing = conn.execute(
        "SELECT event_id, created_at, inbox_id FROM order_outbox "
        "WHERE device_id = ? AND op = 'create' AND state = 'pending' "
        "ORDER BY inbox_id DESC LIMIT 1",
        [device_id],
    ).fetchone()
    if placing is not None and (order is None or placing[2] > order[3]):
        return rules.CancelTarget(None, placing[0], datetime.fromisoformat(placing[1]), False)
    if order is None:
        return None
    return rules.CancelTarget(
        order[0], order[1], datetime.fromisoformat(order[2]), cancellable=bool(order[4])
    )


def record_event(
    conn: Conn,
    event: p.Event,
    device: Device | None,
    *,
    now: datetime,
    stale_after_s: float,
    future_after_s: float = rules.DEFAULT_FUTURE_S,
) -> EventOutcome:
    """Dedup, decide and record one decoded event (inbox + outbox rows + history).

    A new event (the common case) costs one INSERT that the inbox's UNIQUE (device_id,
    event_id) turns into nothing for a repeat, instead of a look-up before every insert."""
    canonical = p.encode(event)  # encoded once: hashed here, stored in the inbox below
    digest = _digest(canonical)
    if device is None:
        return _unknown_device(conn, event, digest, now)
    decision = rules.evaluate(
        event,
        device,
        now=now,
        stale_after_s=stale_after_s,
        future_after_s=future_after_s,
        sku_in_flight=lambda sku: _sku_in_flight(conn, event.device_id, sku),
        last_order=lambda: _last_order(conn, event.device_id),
    )
    at = _ts(now)  # formatted once for every row of this event
    inbox_id = _insert_inbox(conn, event, canonical.decode(), digest, decision, at)
    if inbox_id is None:
        return _repeat(conn, event, digest, now)
    if decision.op is not None:
        _insert_outbox(conn, inbox_id, event, decision, at)
    out = _status(event.device_id, event.event_id, decision.state, now, reason=decision.reason)
    out = _history(conn, out, "ingest", at)
    code = None
    if decision.state is p.State.REJECTED:
        code = rules.CODES.get(decision.reason or "", "rejected")
        conn.execute(
            "INSERT INTO rejections (device_id, event_id, code, detail, at) VALUES (?,?,?,?,?)",
            [event.device_id, event.event_id, code, decision.reason or "", at],
        )
    return EventOutcome(out, rejection_code=code, outbox_created=decision.op is not None)


def _repeat(conn: Conn, event: p.Event, digest: str, now: datetime) -> EventOutcome:
    """The inbox already holds ``event``'s id: a redelivery (answer its current state) or the
    id reused with another payload (a conflict)."""
    known = conn.execute(
        "SELECT payload_hash, state, order_id, reason FROM inbox "
        "WHERE device_id = ? AND event_id = ?",
        [event.device_id, event.event_id],
    ).fetchone()
    current = _status(
        event.device_id, event.event_id, p.State(known[1]), now, order_id=known[2], reason=known[3]
    )
    if known[0] == digest:
        return EventOutcome(current, duplicate=True)
    # refused, but answered with the recorded event's status (``record_rejection`` says why)
    reason = rules.REASON_PAYLOAD_CONFLICT
    _insert_rejection(conn, event.device_id, event.event_id, "payload_conflict", reason, now)
    return EventOutcome(current, rejection_code="payload_conflict", rejection_reason=reason)


def _unknown_device(conn: Conn, event: p.Event, digest: str, now: datetime) -> EventOutcome:
    """No such device (any more): a repeat of an event it recorded earlier still answers its
    state; anything else is rejected and NOT kept in the inbox, so once the device is
    registered its re-sent event counts."""
    exists = conn.execute(
        "SELECT 1 FROM inbox WHERE device_id = ? AND event_id = ?",
        [event.device_id, event.event_id],
    ).fetchone()
    if exists is not None:
        return _repeat(conn, event, digest, now)
    out = record_rejection(
        conn, event.device_id, event.event_id, "unknown_device", rules.REASON_UNKNOWN_DEVICE, now
    )
    assert out is not None
    return EventOutcome(out, rejection_code="unknown_device")


@functools.lru_cache(maxsize=4096)
def _action_json(action: p.ReorderAction | p.CancelLastAction | p.NoAction) -> str:
    """A mapping's action as the inbox stores it: a device's presses repeat a few actions
    (frozen models, equal by value), so each is dumped once, not once per event."""
    return action.model_dump_json()


def _insert_inbox(
    conn: Conn,
    event: p.Event,
    payload: str,
    digest: str,
    decision: rules.Decision,
    at: str,
) -> int | None:
    """The new inbox row's id; None when the event's id is already there."""
    row = conn.execute(
        "INSERT INTO inbox (device_id, event_id, payload_hash, payload, kind, trigger, seq, ts, "
        "received_at, action, state, reason, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (device_id, event_id) DO NOTHING RETURNING id",
        [
            event.device_id,
            event.event_id,
            digest,
            payload,
            event.kind.value,
            event.trigger,
            event.seq,
            _ts(event.ts),
            at,
            _action_json(decision.action),
            decision.state.value,
            decision.reason,
            at,
        ],
    ).fetchone()
    return None if row is None else int(row[0])


def _insert_outbox(
    conn: Conn, inbox_id: int, event: p.Event, decision: rules.Decision, at: str
) -> None:
    sku = quantity = None
    if isinstance(decision.action, p.ReorderAction):
        sku, quantity = decision.action.sku, decision.action.quantity
    target = decision.cancel.order_id if decision.cancel else None
    conn.execute(
        "INSERT INTO order_outbox (inbox_id, device_id, event_id, op, sku, quantity, test, "
        "target_order_id, next_attempt_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            inbox_id,
            event.device_id,
            event.event_id,
            decision.op,
            sku,
            quantity,
            int(decision.test),
            target,
            at,
            at,
            at,
        ],
    )


# --- the order outbox ------------------------------------------------------------------------


_OUTBOX_ROW = (
    "SELECT o.id, o.inbox_id, o.device_id, o.event_id, o.op, o.sku, o.quantity, o.test, "
    "o.target_order_id, o.attempts, i.ts, o.created_at, o.claims "
    "FROM order_outbox o JOIN inbox i ON i.id = o.inbox_id "
)


def _outbox_rows(rows: list[Any]) -> list[OutboxRow]:
    return [
        OutboxRow(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10], r[11], r[12]
        )
        for r in rows
    ]


def due_outbox(conn: Conn, now: datetime, limit: int) -> list[OutboxRow]:
    """Pending rows whose next attempt is due, oldest first (leased or not)."""
    rows = conn.execute(
        _OUTBOX_ROW + "WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
        "ORDER BY o.next_attempt_at, o.id LIMIT ?",
        [_ts(now), limit],
    ).fetchall()
    return _outbox_rows(rows)


def claim_due(
    conn: Conn,
    owner: str,
    now: datetime,
    lease_s: float,
    limit: int,
    busy: Collection[int] = (),
) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows to worker ``owner`` for ``lease_s``, oldest first.

    A row is claimable when it is pending, due, and not leased (or its lease ran out: its
    worker died or hung; or ``owner`` holds it and has not named it ``busy``: a retry after
    its attempt crashed). On PostgreSQL the candidate rows
    are locked ``FOR UPDATE SKIP LOCKED``, so two workers claiming at the same moment take
    different rows instead of waiting for each other. ``claims`` counts the leases: a row
    leased before may have reached the platform already."""
    at, until = _ts(now), _ts(now + timedelta(seconds=lease_s))
    skip_locked = " FOR UPDATE SKIP LOCKED" if dialect(conn) == "postgres" else ""
    not_busy = f"AND id NOT IN ({','.join('?' * len(busy))}) " if busy else ""
    ids = [
        r[0]
        for r in conn.execute(
            "UPDATE order_outbox SET lease_owner = ?, lease_until = ?, claims = claims + 1 "
            "WHERE id IN (SELECT id FROM order_outbox WHERE state = 'pending' "
            "AND next_attempt_at <= ? "
            f"AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?) {not_busy}"
            f"ORDER BY next_attempt_at, id LIMIT ?{skip_locked}) RETURNING id",
            [owner, until, at, at, owner, *busy, limit],
        ).fetchall()
    ]
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        _OUTBOX_ROW + f"WHERE o.id IN ({marks}) ORDER BY o.next_attempt_at, o.id", ids
    ).fetchall()
    return _outbox_rows(rows)


def release_leases(conn: Conn, owner: str | None = None) -> int:
    """Give up the leases of worker ``owner`` (it is stopping: another worker may take its
    rows at once instead of after the lease), or every lease (a SQLite ledger has one worker,
    which just started: the leases are its previous run's); the number released."""
    mine, params = ("= ?", [owner]) if owner is not None else ("IS NOT NULL", [])
    rows = conn.execute(
        "UPDATE order_outbox SET lease_owner = NULL, lease_until = NULL "
        f"WHERE lease_owner {mine} AND state = 'pending' RETURNING id",
        params,
    ).fetchall()
    return len(rows)


def next_wake(conn: Conn, now: datetime) -> datetime | None:
    """When a pending row next becomes claimable (due and its lease over) after ``now``;
    None: nothing will be without a new row."""
    row = conn.execute(
        "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at "
        "THEN lease_until ELSE next_attempt_at END) FROM order_outbox "
        "WHERE state = 'pending' AND (next_attempt_at > ? OR lease_until > ?)",
        [_ts(now), _ts(now)],
    ).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None


def next_due_at(conn: Conn) -> str | None:
    """When the earliest pending row becomes due (None: nothing pending)."""
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM order_outbox WHERE state = 'pending'"
    ).fetchone()
    return row[0] if row else None


def _set_event(
    conn: Conn,
    inbox_id: int,
    state: p.State,
    now: datetime,
    *,
    order_id: str | None = None,
    reason: str | None = None,
    source: str = "ingest",
    at: str | None = None,
) -> StatusOut:
    """The event moves to ``state``, and a history row says so."""
    out = _move_event(
        conn, inbox_id, state, now, order_id=order_id, reason=reason, source=source, at=at
    )
    assert out is not None  # unguarded: the row is the outbox row's own event
    return out


def _move_event(
    conn: Conn,
    inbox_id: int,
    state: p.State,
    now: datetime,
    *,
    order_id: str | None = None,
    reason: str | None = None,
    source: str = "ingest",
    at: str | None = None,
    only_from: p.State | None = None,
) -> StatusOut | None:
    """``_set_event``; with ``only_from``, only if the event is in that state now (None
    otherwise: checked and moved in one statement)."""
    at = at or _ts(now)
    guard, params = ("", []) if only_from is None else (" AND state = ?", [only_from.value])
    row = conn.execute(
        "UPDATE inbox SET state = ?, order_id = COALESCE(?, order_id), reason = ?, "
        f"updated_at = ? WHERE id = ?{guard} RETURNING device_id, event_id, order_id",
        [state.value, order_id, reason, at, inbox_id, *params],
    ).fetchone()
    if row is None:
        return None
    out = _status(row[0], row[1], state, now, order_id=row[2], reason=reason)
    return _history(conn, out, source, at)


def _finish_row(conn: Conn, row: OutboxRow, sets: str, params: list[Any], at: str) -> bool:
    """Count an attempt on ``row`` and apply ``sets`` -- only while it is still pending; False
    when it is not (an operator discarded it, or another worker's attempt settled it first).
    One statement, so two workers settling one row cannot both pass the check."""
    found = conn.execute(
        f"UPDATE order_outbox SET {sets}, attempts = attempts + 1, updated_at = ? "
        "WHERE id = ? AND inbox_id = ? AND state = 'pending' RETURNING id",
        [*params, at, row.id, row.inbox_id],
    ).fetchone()
    return found is not None


def mark_created(
    conn: Conn,
    row: OutboxRow,
    *,
    order_id: str,
    state: p.State,
    platform_status: int | None,
    amount: int | None,
    currency: str | None,
    now: datetime,
) -> list[StatusOut]:
    """The platform created the order: outbox done, ``orders`` row, event ``ordered``."""
    at = _ts(now)  # formatted once for every row of this change
    if not _finish_row(conn, row, "state = 'done', last_error = NULL", [], at):
        return []  # discarded by an operator meanwhile; the platform's key prevents a double
    conn.execute(
        "INSERT INTO orders (order_id, inbox_id, device_id, event_id, sku, quantity, amount, "
        "currency, test, state, platform_status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
        [
            order_id,
            row.inbox_id,
            row.device_id,
            row.event_id,
            row.sku or "",
            row.quantity or 0,
            amount,
            currency,
            int(row.test),
            p.State.ORDERED.value,
            platform_status,
            at,
            at,
        ],
    )
    out = [_set_event(conn, row.inbox_id, p.State.ORDERED, now, order_id=order_id, at=at)]
    if state is not p.State.ORDERED:  # the platform already moved on (e.g. paid at once)
        out += apply_order_state(conn, order_id, state, platform_status, now, source="ingest")
    return out


def mark_transient(
    conn: Conn,
    row: OutboxRow,
    *,
    error: str,
    next_attempt_at: datetime,
    now: datetime,
) -> list[StatusOut]:
    """Keep the row for a retry; the event goes ``queued`` the first time only."""
    sets = "last_error = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL"
    if not _finish_row(conn, row, sets, [error[:2000], _ts(next_attempt_at)], _ts(now)):
        return []
    queued = _move_event(conn, row.inbox_id, p.State.QUEUED, now, only_from=p.State.ACCEPTED)
    return [] if queued is None else [queued]


def mark_failed(conn: Conn, row: OutboxRow, *, reason: str, now: datetime) -> list[StatusOut]:
    """The platform refused: outbox ``failed``, the event ``failed`` with the platform's reason."""
    at = _ts(now)
    if not _finish_row(conn, row, "state = 'failed', last_error = ?", [reason[:2000]], at):
        return []
    return [_set_event(conn, row.inbox_id, p.State.FAILED, now, reason=reason, at=at)]


def mark_rejected(
    conn: Conn, row: OutboxRow, *, reason: str, code: str, now: datetime
) -> list[StatusOut]:
    """Not allowed, found out by the worker before any platform call (e.g. no e-vendi order
    is assigned to the device): outbox ``failed``, the event ``rejected`` with a
    ``rejections`` row, as a rule's rejection would have been."""
    at = _ts(now)
    if not _finish_row(conn, row, "state = 'failed', last_error = ?", [reason[:2000]], at):
        return []
    conn.execute(
        "INSERT INTO rejections (device_id, event_id, code, detail, at) VALUES (?, ?, ?, ?, ?)",
        [row.device_id, row.event_id, code, reason[:2000], at],
    )
    return [_set_event(conn, row.inbox_id, p.State.REJECTED, now, reason=reason, at=at)]


def settle_order(conn: Conn, order_id: str, now: datetime) -> None:
    """The platform finished ``order_id`` in the call that made it and will never report on
    it (e-vendi's closeOrder): it no longer holds the throttle and is not polled."""
    conn.execute(
        "UPDATE orders SET settled = 1, updated_at = ? WHERE order_id = ?", [_ts(now), order_id]
    )


def mark_cancelled(conn: Conn, row: OutboxRow, *, now: datetime) -> list[StatusOut]:
    """A long press cancelled ``row.target_order_id``: both events learn ``cancelled``."""
    at = _ts(now)
    if row.target_order_id is None or not _finish_row(
        conn, row, "state = 'done', last_error = NULL", [], at
    ):
        return []
    out = apply_order_state(
        conn, row.target_order_id, p.State.CANCELLED, None, now, source="ingest"
    )
    out.append(_set_event(conn, row.inbox_id, p.State.CANCELLED, now, order_id=row.target_order_id))
    return out


def apply_order_state(
    conn: Conn,
    order_id: str,
    state: p.State,
    platform_status: int | None,
    now: datetime,
    *,
    source: str,
) -> list[StatusOut]:
    """Move an order (and its event) forward to ``state``; stale or unknown changes are
    ignored (never backwards)."""
    # Locked on PostgreSQL: a webhook on one worker and a poll on another must not both
    # read "ordered" and write "paid" after "shipped". (SQLite's single writer serialises.)
    for_update = " FOR UPDATE" if dialect(conn) == "postgres" else ""
    row = conn.execute(
        f"SELECT state, inbox_id FROM orders WHERE order_id = ?{for_update}", [order_id]
    ).fetchone()
    if row is None or not rules.advances(p.State(row[0]), state):
        return []
    conn.execute(
        "UPDATE orders SET state = ?, platform_status = COALESCE(?, platform_status), "
        "updated_at = ? WHERE order_id = ?",
        [state.value, platform_status, _ts(now), order_id],
    )
    reason = "payment denied" if state is p.State.FAILED else None
    return [_set_event(conn, row[1], state, now, order_id=order_id, reason=reason, source=source)]


def known_orders(conn: Conn, order_ids: list[str]) -> set[str]:
    """Which of ``order_ids`` ingest made (a store's other orders are none of its business)."""
    if not order_ids:
        return set()
    marks = ",".join("?" * len(order_ids))
    rows = conn.execute(f"SELECT order_id FROM orders WHERE order_id IN ({marks})", order_ids)
    return {r[0] for r in rows.fetchall()}


def open_orders(conn: Conn, limit: int = 500) -> list[str]:
    """Orders not yet in a final state (the polling fallback's work list), oldest update first."""
    rows = conn.execute(
        "SELECT order_id FROM orders WHERE state IN ('ordered', 'paid', 'shipped') "
        "AND settled = 0 ORDER BY updated_at LIMIT ?",
        [limit],
    ).fetchall()
    return [r[0] for r in rows]


def confirm_published(conn: Conn, history_ids: Iterable[int], now: datetime) -> int:
    """Mark history rows as delivered to the broker (PUBACK seen); the number marked."""
    ids = sorted(set(history_ids))
    marked = 0
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        marked += len(
            conn.execute(
                f"UPDATE status_history SET published_at = ? WHERE id IN ({marks}) "
                "AND published_at IS NULL RETURNING id",
                [_ts(now), *chunk],
            ).fetchall()
        )
    return marked


_UNCONFIRMED_EVENTS = """
WITH pending AS (
    SELECT device_id, event_id, MAX(id) AS last_pending FROM status_history
    WHERE published_at IS NULL GROUP BY device_id, event_id
), latest_of_device AS (   -- so each device's retained status ends on its newest one
    SELECT h.device_id, h.event_id FROM status_history h JOIN (
        SELECT device_id, MAX(id) AS newest FROM status_history
        WHERE device_id IN (SELECT device_id FROM pending) GROUP BY device_id
    ) d ON h.id = d.newest
), wanted AS (
    SELECT device_id, event_id FROM pending UNION SELECT device_id, event_id FROM latest_of_device
)
SELECT h.device_id, h.event_id, MAX(h.id) AS last_id
FROM status_history h JOIN wanted w ON h.device_id = w.device_id
    AND (h.event_id = w.event_id OR (h.event_id IS NULL AND w.event_id IS NULL))
GROUP BY h.device_id, h.event_id ORDER BY last_id
"""


def unconfirmed_statuses(conn: Conn) -> list[StatusOut]:
    """What to publish at start-up: the CURRENT status of every event that has a history row
    whose publish was never confirmed (the previous process died between a commit and the
    broker's PUBACK, or the broker was away), oldest change first; plus each such device's
    newest status, last, so its retained status ends up being its latest. Each ``StatusOut``
    carries the event's unconfirmed rows, which its confirmed publish settles. Any age."""
    out: list[StatusOut] = []
    for device_id, event_id, last_id in conn.execute(_UNCONFIRMED_EVENTS).fetchall():
        same_event = "event_id IS NULL" if event_id is None else "event_id = ?"
        pending = tuple(
            r[0]
            for r in conn.execute(
                f"SELECT id FROM status_history WHERE device_id = ? AND {same_event} "
                "AND published_at IS NULL ORDER BY id",
                [device_id] if event_id is None else [device_id, event_id],
            ).fetchall()
        )
        out.append(
            StatusOut(
                device_id, _current_status(conn, device_id, event_id, last_id), history_ids=pending
            )
        )
    return out


def _current_status(conn: Conn, device_id: str, event_id: str | None, last_id: int) -> p.Status:
    """The inbox's state for a recorded event, else its newest history row (rejections that
    never entered the inbox)."""
    row = conn.execute(
        "SELECT state, order_id, reason, updated_at FROM inbox "
        "WHERE device_id = ? AND event_id = ?",
        [device_id, event_id],
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT state, order_id, reason, at FROM status_history WHERE id = ?", [last_id]
        ).fetchone()
    return p.Status(
        event_id=event_id,
        state=p.State(row[0]),
        order_id=row[1],
        reason=row[2],
        ts=datetime.fromisoformat(row[3]),
    )


def as_json(value: Any) -> str:
    """Compact JSON for TEXT columns."""
    return json.dumps(value, separators=(",", ":"))
