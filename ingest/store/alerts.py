"""SQL of the alerts and their notifications (``ingest.alerting``; rules in ``domain.alerts``).

``gather_facts`` reads what the rules look at; ``apply`` runs as one job of the writer: it reads
the open alerts in the transaction, asks ``domain.alerts.reconcile`` what to change, and changes
it with conditional statements, so several workers sharing one PostgreSQL make each transition
once: the partial unique index ``alerts_open`` lets one open alert exist per (kind, subject)
(``INSERT .. ON CONFLICT DO NOTHING``), and a clear or an acknowledgement is an ``UPDATE .. WHERE
state ..`` that only one of them wins. The winner queues the transition's notifications (one row
per channel) in the same transaction; senders lease those rows (``claim_notifications``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edgeorder import protocol as p
from edgeorder.ingest.domain import alerts as rules
from edgeorder.ingest.store import audit
from edgeorder.ingest.store.database import Conn, dicts

__all__ = [
    "ALERT_COLUMNS",
    "AlertNotActiveError",
    "AlertNotFoundError",
    "Notification",
    "Transition",
    "acknowledge",
    "apply",
    "claim_notifications",
    "gather_facts",
    "get_alert",
    "list_alerts",
    "mark_failed",
    "mark_sent",
    "mark_summarised",
    "open_alerts",
    "open_counts",
    "sent_since",
]

ALERT_COLUMNS = (
    "id, kind, device_id, state, since, detail, opened_at, acknowledged_by, acknowledged_at, "
    "cleared_at, updated_at"
)
_FAILED = ("failed", "rejected")


class AlertNotFoundError(LookupError):
    """No alert has this id."""


class AlertNotActiveError(ValueError):
    """The alert is acknowledged or cleared already."""


@dataclass(frozen=True)
class Transition:
    """An alert that changed state in ``apply`` / ``acknowledge`` (for logs and the bus)."""

    alert_id: int
    transition: str
    kind: str
    device_id: str | None


def _ts(at: datetime) -> str:
    return p.format_ts(at)


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# --- facts --------------------------------------------------------------------------------------


def gather_facts(conn: Conn, now: datetime, window_s: float) -> dict[str, Any]:
    """What the rules look at, besides the platform: ``oldest_pending``, ``pending`` and
    ``devices`` (``domain.alerts.DeviceFacts`` of every enabled device)."""
    row = conn.execute(
        "SELECT MIN(created_at), COUNT(*) FROM order_outbox WHERE state = 'pending'"
    ).fetchone()
    since = _ts(now - timedelta(seconds=window_s))
    failures = {
        r["device_id"]: r
        for r in dicts(
            conn.execute(
                "SELECT device_id, COUNT(*) AS events, "
                "SUM(CASE WHEN state IN ('failed', 'rejected') THEN 1 ELSE 0 END) AS failures, "
                "MIN(CASE WHEN state IN ('failed', 'rejected') THEN received_at END) AS first_at, "
                "MAX(CASE WHEN state IN ('failed', 'rejected') THEN received_at END) AS last_at "
                "FROM inbox WHERE received_at >= ? GROUP BY device_id",
                [since],
            )
        )
    }
    devices = dicts(
        conn.execute(
            "SELECT d.device_id, d.created_at, pr.online, pr.received_at AS presence_at, "
            "t.queue_depth, t.dropped, t.received_at AS telemetry_at, "
            "c.version AS config_version "
            "FROM devices d LEFT JOIN presence pr ON pr.device_id = d.device_id "
            "LEFT JOIN telemetry t ON t.device_id = d.device_id "
            "LEFT JOIN config_reported c ON c.device_id = d.device_id "
            "WHERE d.enabled = 1 ORDER BY d.device_id"
        )
    )
    facts = [_device_facts(conn, d, failures.get(d["device_id"])) for d in devices]
    return {
        "oldest_pending": _dt(row[0]) if row and row[0] else None,
        "pending": int(row[1]) if row else 0,
        "devices": tuple(facts),
    }


def _device_facts(conn: Conn, d: dict[str, Any], fail: dict[str, Any] | None) -> Any:
    last_failure = None
    if fail and fail["failures"]:
        reason = conn.execute(
            "SELECT state, reason FROM inbox WHERE device_id = ? AND received_at = ? "
            "AND state IN ('failed', 'rejected') ORDER BY id DESC LIMIT 1",
            [d["device_id"], fail["last_at"]],
        ).fetchone()
        if reason is not None:
            last_failure = f"{reason[0]}: {reason[1] or 'no reason given'}"[:300]
    return rules.DeviceFacts(
        device_id=d["device_id"],
        added_at=datetime.fromisoformat(d["created_at"]),
        online=None if d["online"] is None else bool(d["online"]),
        presence_at=_dt(d["presence_at"]),
        queue_depth=d["queue_depth"],
        dropped=d["dropped"],
        telemetry_at=_dt(d["telemetry_at"]),
        config_reported=d["config_version"] is not None,
        events=int(fail["events"]) if fail else 0,
        failures=int(fail["failures"] or 0) if fail else 0,
        last_failure=last_failure,
        first_failure_at=_dt(fail["first_at"]) if fail else None,
    )


# --- alerts -----------------------------------------------------------------------------------


def _open(conn: Conn) -> list[rules.OpenAlert]:
    rows = conn.execute(
        "SELECT id, kind, subject, detail, ok_since FROM alerts WHERE state <> 'cleared' "
        "ORDER BY kind, subject"
    ).fetchall()
    return [rules.OpenAlert(int(r[0]), r[1], r[2], r[3], _dt(r[4])) for r in rows]


def apply(
    conn: Conn,
    desired: dict[rules.Key, rules.Condition],
    now: datetime,
    *,
    hold_s: float,
    channels: Sequence[str],
) -> list[Transition]:
    """Make the open alerts match ``desired`` (a job of the writer); the transitions made."""
    at = _ts(now)
    made: list[Transition] = []
    for change in rules.reconcile(_open(conn), desired, now, hold_s):
        if change.op == "open":
            assert change.condition is not None
            made += _insert(conn, change.condition, at, channels)
        elif change.op == "detail":
            assert change.alert_id is not None
            assert change.condition is not None
            conn.execute(
                "UPDATE alerts SET detail = ?, updated_at = ? WHERE id = ? AND state <> 'cleared'",
                [change.condition.detail[:2000], at, change.alert_id],
            )
        elif change.op in ("hold", "resume"):
            conn.execute(
                "UPDATE alerts SET ok_since = ?, updated_at = ? WHERE id = ? "
                "AND state <> 'cleared'",
                [at if change.op == "hold" else None, at, change.alert_id],
            )
        elif change.op == "clear":
            assert change.alert_id is not None
            made += _clear(conn, change.alert_id, at, channels)
    return made


def _insert(conn: Conn, c: rules.Condition, at: str, channels: Sequence[str]) -> list[Transition]:
    kind, subject = c.key
    cur = conn.execute(
        "INSERT INTO alerts (kind, subject, device_id, state, since, detail, opened_at, "
        "updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [kind, subject, c.device_id, _ts(c.since), c.detail[:2000], at, at],
    )
    if cur.rowcount != 1:  # another worker opened it first: its transition, its messages
        return []
    row = conn.execute(
        "SELECT id FROM alerts WHERE kind = ? AND subject = ? AND state <> 'cleared'",
        [kind, subject],
    ).fetchone()
    alert_id = int(row[0])
    _queue(conn, alert_id, "opened", at, channels)
    return [Transition(alert_id, "opened", kind, c.device_id)]


def _clear(conn: Conn, alert_id: int, at: str, channels: Sequence[str]) -> list[Transition]:
    cur = conn.execute(
        "UPDATE alerts SET state = 'cleared', cleared_at = ?, updated_at = ? "
        "WHERE id = ? AND state <> 'cleared'",
        [at, at, alert_id],
    )
    if cur.rowcount != 1:
        return []
    row = conn.execute("SELECT kind, device_id FROM alerts WHERE id = ?", [alert_id]).fetchone()
    _queue(conn, alert_id, "cleared", at, channels)
    return [Transition(alert_id, "cleared", row[0], row[1])]


def _queue(conn: Conn, alert_id: int, transition: str, at: str, channels: Sequence[str]) -> None:
    for channel in channels:
        conn.execute(
            "INSERT INTO alert_notifications (alert_id, transition, channel, next_attempt_at, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [alert_id, transition, channel, at, at],
        )


def acknowledge(
    conn: Conn, alert_id: int, *, actor: str, now: datetime, channels: Sequence[str]
) -> dict[str, Any]:
    """Acknowledge an active alert (audited); raises ``AlertNotFoundError`` /
    ``AlertNotActiveError``. Answers the alert as it is now."""
    at = _ts(now)
    cur = conn.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?, "
        "updated_at = ? WHERE id = ? AND state = 'active'",
        [actor, at, at, alert_id],
    )
    alert = get_alert(conn, alert_id)
    if alert is None:
        raise AlertNotFoundError(f"no alert {alert_id}")
    if cur.rowcount != 1:
        raise AlertNotActiveError(f"alert {alert_id} is {alert['state']}, not active")
    _queue(conn, alert_id, "acknowledged", at, channels)
    audit.record(
        conn,
        at=at,
        actor=actor,
        action="alert.acknowledge",
        device_id=alert["device_id"],
        detail=f"alert {alert_id} {alert['kind']}",
    )
    return alert


def get_alert(conn: Conn, alert_id: int) -> dict[str, Any] | None:
    rows = dicts(conn.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", [alert_id]))
    return rows[0] if rows else None


def list_alerts(
    conn: Conn, *, state: str | None = None, device_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Alerts, newest first: open ones whatever ``limit`` says (they are few), then cleared."""
    where, args = ["1 = 1"], []
    if state is not None:
        where.append("state = ?")
        args.append(state)
    if device_id is not None:
        where.append("device_id = ?")
        args.append(device_id)
    sql = (
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
        "ORDER BY CASE WHEN state = 'cleared' THEN 1 ELSE 0 END, opened_at DESC, id DESC LIMIT ?"
    )
    return dicts(conn.execute(sql, [*args, limit]))


def open_alerts(conn: Conn) -> list[dict[str, Any]]:
    """Every alert not cleared (the banner's)."""
    return dicts(
        conn.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'cleared' ORDER BY opened_at, id"
        )
    )


def open_counts(conn: Conn) -> dict[str, int]:
    """Alerts not cleared, by kind."""
    rows = conn.execute(
        "SELECT kind, COUNT(*) FROM alerts WHERE state <> 'cleared' GROUP BY kind"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


# --- notifications ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """A queued message of one alert transition on one channel, with the alert as it is now."""

    id: int
    channel: str
    transition: str
    attempts: int
    alert: dict[str, Any]


def claim_notifications(
    conn: Conn, *, owner: str, now: datetime, lease_s: float, limit: int = 50
) -> list[Notification]:
    """Lease due notifications to ``owner`` (a job of the writer). Each row is taken by a
    conditional ``UPDATE``: of several workers, one wins it; a lease that ran out (its worker
    died mid-send) can be taken over."""
    at = _ts(now)
    due = conn.execute(
        "SELECT id FROM alert_notifications WHERE state = 'pending' AND next_attempt_at <= ? "
        "AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?",
        [at, at, limit],
    ).fetchall()
    until = _ts(now + timedelta(seconds=lease_s))
    taken: list[int] = []
    for (notification_id,) in due:
        cur = conn.execute(
            "UPDATE alert_notifications SET lease_owner = ?, lease_until = ? WHERE id = ? "
            "AND state = 'pending' AND (lease_until IS NULL OR lease_until < ?)",
            [owner, until, notification_id, at],
        )
        if cur.rowcount == 1:
            taken.append(int(notification_id))
    if not taken:
        return []
    marks = ",".join("?" * len(taken))
    rows = dicts(
        conn.execute(
            "SELECT n.id AS n_id, n.channel, n.transition, n.attempts, "
            f"{', '.join('a.' + c.strip() for c in ALERT_COLUMNS.split(','))} "
            "FROM alert_notifications n JOIN alerts a ON a.id = n.alert_id "
            f"WHERE n.id IN ({marks}) ORDER BY n.id",
            taken,
        )
    )
    return [
        Notification(
            r.pop("n_id"), r.pop("channel"), r.pop("transition"), int(r.pop("attempts")), r
        )
        for r in rows
    ]


def mark_sent(conn: Conn, ids: Sequence[int], now: datetime) -> None:
    for notification_id in ids:
        conn.execute(
            "UPDATE alert_notifications SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?",
            [_ts(now), notification_id],
        )


def mark_summarised(conn: Conn, ids: Sequence[int], now: datetime) -> None:
    """Sent as part of one summary message (the cap per period was reached)."""
    for notification_id in ids:
        conn.execute(
            "UPDATE alert_notifications SET state = 'summarised', sent_at = ?, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?",
            [_ts(now), notification_id],
        )


def mark_failed(
    conn: Conn,
    ids: Sequence[int],
    *,
    error: str,
    retry_at: datetime | None,
    count: bool = True,
) -> None:
    """A failed attempt: try again at ``retry_at``, or give up (``None``: state ``failed``).
    ``count=False``: no attempt was made (deferred past the cap), only the time moves."""
    for notification_id in ids:
        conn.execute(
            "UPDATE alert_notifications SET attempts = attempts + ?, "
            "last_error = COALESCE(?, last_error), state = ?, "
            "next_attempt_at = COALESCE(?, next_attempt_at), lease_owner = NULL, "
            "lease_until = NULL WHERE id = ?",
            [
                1 if count else 0,
                error[:2000] if count else None,
                "pending" if retry_at is not None else "failed",
                None if retry_at is None else _ts(retry_at),
                notification_id,
            ],
        )


def sent_since(conn: Conn, channel: str, since: datetime) -> int:
    """Messages sent on ``channel`` since ``since`` (a summary counts once: its first row)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM alert_notifications WHERE channel = ? AND state = 'sent' "
        "AND sent_at >= ?",
        [channel, _ts(since)],
    ).fetchone()
    summaries = conn.execute(
        "SELECT COUNT(DISTINCT sent_at) FROM alert_notifications WHERE channel = ? "
        "AND state = 'summarised' AND sent_at >= ?",
        [channel, _ts(since)],
    ).fetchone()
    return int(row[0]) + int(summaries[0])
