"""A device's heartbeats over a window, for the device page's chart (written by
``ingest.store.reports.record_telemetry``, kept ``--telemetry-history-s``).

A window is read as at most one heartbeat per bucket (the last of each minute, ten minutes
or hour: ``Window.bucket_chars`` of the ISO timestamp), so a week of one-second heartbeats
is still a few hundred points. The same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edgeorder.ingest.store.database import Conn, dicts
from edgeorder.protocol import format_ts

__all__ = ["WINDOWS", "ChartWindow", "samples"]

Row = dict[str, Any]


@dataclass(frozen=True)
class ChartWindow:
    key: str
    seconds: int
    bucket_chars: int  # 16: a minute, 15: ten minutes, 13: an hour
    label: str


WINDOWS = {
    w.key: w
    for w in (
        ChartWindow("1h", 3_600, 16, "last hour, one point a minute"),
        ChartWindow("6h", 6 * 3_600, 16, "last 6 hours, one point a minute"),
        ChartWindow("24h", 24 * 3_600, 15, "last 24 hours, one point per 10 minutes"),
        ChartWindow("7d", 7 * 24 * 3_600, 13, "last 7 days, one point an hour"),
    )
}


def samples(conn: Conn, device_id: str, window: ChartWindow, now: datetime) -> list[Row]:
    """The last heartbeat of each bucket of ``window`` up to ``now``, oldest first:
    ``received_at``, ``uptime_s``, ``queue_depth``, ``dropped``, ``extra`` (JSON text)."""
    since = format_ts(now - timedelta(seconds=window.seconds))
    bucket = int(window.bucket_chars)  # one of WINDOWS' (a literal: PostgreSQL groups by it)
    return dicts(
        conn.execute(
            "SELECT received_at, uptime_s, queue_depth, dropped, extra FROM telemetry_history "
            "WHERE id IN (SELECT MAX(id) FROM telemetry_history WHERE device_id = ? "
            f"AND received_at >= ? GROUP BY substr(received_at, 1, {bucket})) "
            "ORDER BY received_at, id",
            (device_id, since),
        )
    )
