"""What devices report besides events: presence, telemetry and the config version they applied.

Each report replaces the device's previous one (the latest is what the fleet shows); a
heartbeat is also kept in ``telemetry_history`` for ``keep_s`` (the device page's chart),
and the device's heartbeats older than that go in the same job. Plain
functions of a ``Conn``, run as jobs of the service's group-commit writer; the same SQL on both
backends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from edgeorder import protocol as p
from edgeorder.ingest.store.database import Conn

__all__ = [
    "TELEMETRY_KEEP_S",
    "record",
    "record_config",
    "record_presence",
    "record_telemetry",
]

TELEMETRY_KEEP_S = 7 * 24 * 3600
"""How long a heartbeat stays in ``telemetry_history`` by default (``--telemetry-history-s``)."""


def record_presence(conn: Conn, device_id: str, report: p.Presence, now: datetime) -> None:
    conn.execute(
        "INSERT INTO presence (device_id, online, fw, ts, received_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, fw = excluded.fw, "
        "ts = excluded.ts, received_at = excluded.received_at",
        [device_id, int(report.online), report.fw, p.format_ts(report.ts), p.format_ts(now)],
    )


def record_telemetry(
    conn: Conn,
    device_id: str,
    report: p.Telemetry,
    now: datetime,
    *,
    keep_s: float = TELEMETRY_KEEP_S,
) -> None:
    """The device's latest heartbeat, and one more row of its history (none if ``keep_s`` is
    0), whose rows older than ``keep_s`` are deleted."""
    extra = json.dumps(report.model_extra or {}, allow_nan=False)
    conn.execute(
        "INSERT INTO telemetry (device_id, uptime_s, queue_depth, dropped, fw, extra, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
        "uptime_s = excluded.uptime_s, queue_depth = excluded.queue_depth, "
        "dropped = excluded.dropped, fw = excluded.fw, extra = excluded.extra, "
        "received_at = excluded.received_at",
        [
            device_id,
            report.uptime_s,
            report.queue_depth,
            report.dropped,
            report.fw,
            extra,
            p.format_ts(now),
        ],
    )
    if keep_s <= 0:
        conn.execute("DELETE FROM telemetry_history WHERE device_id = ?", [device_id])
        return
    conn.execute(
        "DELETE FROM telemetry_history WHERE device_id = ? AND received_at < ?",
        [device_id, p.format_ts(now - timedelta(seconds=keep_s))],
    )
    conn.execute(
        "INSERT INTO telemetry_history (device_id, uptime_s, queue_depth, dropped, extra, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?)",
        [device_id, report.uptime_s, report.queue_depth, report.dropped, extra, p.format_ts(now)],
    )


def record_config(conn: Conn, device_id: str, report: p.ConfigReported, now: datetime) -> None:
    conn.execute(
        "INSERT INTO config_reported (device_id, version, ts, received_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, ts = excluded.ts, "
        "received_at = excluded.received_at",
        [device_id, report.version, p.format_ts(report.ts), p.format_ts(now)],
    )


_BY_CHANNEL: dict[p.Channel, Callable[..., None]] = {
    p.Channel.PRESENCE: record_presence,
    p.Channel.TELEMETRY: record_telemetry,
    p.Channel.CONFIG_REPORTED: record_config,
}


def record(
    conn: Conn,
    channel: p.Channel,
    device_id: str,
    report: Any,
    now: datetime,
    *,
    telemetry_keep_s: float = TELEMETRY_KEEP_S,
) -> None:
    """Record ``report`` (decoded from ``channel``) as the device's latest."""
    write = _BY_CHANNEL[channel]  # looked up here: tests put a failing writer in its place
    if channel is p.Channel.TELEMETRY:
        write(conn, device_id, report, now, keep_s=telemetry_keep_s)
    else:
        write(conn, device_id, report, now)
