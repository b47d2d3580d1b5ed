"""Seeds for the operator-view tests: presence at a given time, a confirmed status, heartbeats
through the real ``reports.record``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from edgeorder import protocol as p
from edgeorder.ingest.store import reports
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.db import atomic


def presence_at(db: Path | Database, device_id: str, online: bool, at: datetime) -> None:
    """The device's presence as ingest records it, received at ``at``."""
    report = p.Presence(online=online, fw="1.4.0", ts=at)
    with Database.of(db).open() as conn, atomic(conn):
        reports.record(conn, p.Channel.PRESENCE, device_id, report, at)


def confirm(db: Path | Database, event_id: str, at: datetime) -> None:
    """The broker acknowledged every status of ``event_id`` at ``at``."""
    with Database.of(db).open() as conn, atomic(conn):
        conn.execute(
            "UPDATE status_history SET published_at = ? WHERE event_id = ?",
            (p.format_ts(at), event_id),
        )


def heartbeats(
    db: Path | Database,
    device_id: str,
    readings: list[float],
    *,
    end: datetime,
    every: timedelta = timedelta(minutes=1),
    dropped: int = 0,
) -> None:
    """One heartbeat per reading (``sensor.level``), the last at ``end``."""
    with Database.of(db).open() as conn, atomic(conn):
        for n, value in enumerate(readings):
            at = end - every * (len(readings) - 1 - n)
            report = p.Telemetry.model_validate(
                {
                    "uptime_s": 3600 + n * 60,
                    "queue_depth": n % 3,
                    "dropped": dropped,
                    "fw": "1.4.0",
                    "sensor.level": value,
                }
            )
            reports.record(conn, p.Channel.TELEMETRY, device_id, report, at)
