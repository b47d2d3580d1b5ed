"""What the dashboard shows of a device beyond the fleet row: its stored figures (uptime,
dropped presses, queue depth, firmware: the latest heartbeat and presence), since when it is
online or offline, and the inputs of its LED (``ingest.domain.device_view``): the latest
status ingest confirmed sending it, and whether its latest event still waits for one.

One statement for every device (or one); the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from edgeorder.ingest.store.database import Conn, dicts

__all__ = ["device_facts"]

Row = dict[str, Any]

_FACTS_SQL = """
SELECT d.device_id,
       p.online, p.received_at AS presence_changed_at,
       t.uptime_s, t.dropped, t.queue_depth, t.fw AS telemetry_fw, t.received_at AS telemetry_at,
       (SELECT s.state FROM status_history s
         WHERE s.device_id = d.device_id AND s.published_at IS NOT NULL
         ORDER BY s.published_at DESC, s.id DESC LIMIT 1) AS led_status,
       (SELECT s.reason FROM status_history s
         WHERE s.device_id = d.device_id AND s.published_at IS NOT NULL
         ORDER BY s.published_at DESC, s.id DESC LIMIT 1) AS led_reason,
       (SELECT s.published_at FROM status_history s
         WHERE s.device_id = d.device_id AND s.published_at IS NOT NULL
         ORDER BY s.published_at DESC, s.id DESC LIMIT 1) AS led_status_at,
       e.received_at AS last_event_at,
       CASE WHEN e.id IS NULL OR EXISTS (SELECT 1 FROM status_history s
         WHERE s.device_id = e.device_id AND s.event_id = e.event_id
           AND s.published_at IS NOT NULL) THEN 1 ELSE 0 END AS last_event_answered
FROM devices d
LEFT JOIN presence p ON p.device_id = d.device_id
LEFT JOIN telemetry t ON t.device_id = d.device_id
LEFT JOIN inbox e ON e.id = (SELECT id FROM inbox WHERE device_id = d.device_id
                             ORDER BY received_at DESC, id DESC LIMIT 1)
{where}
"""


def device_facts(conn: Conn, device_id: str | None = None) -> dict[str, Row]:
    """Per device id: ``online`` (None: never reported), ``presence_changed_at`` (when ingest
    received its latest presence: the time it went offline or came online), the latest
    heartbeat's ``uptime_s``, ``dropped``, ``queue_depth``, ``telemetry_fw`` and
    ``telemetry_at``, ``led_status``/``led_reason``/``led_status_at`` (latest confirmed status),
    ``last_event_at`` and ``last_event_answered``."""
    params: dict[str, Any] = {}
    where = ""
    if device_id is not None:
        where, params["device_id"] = "WHERE d.device_id = :device_id", device_id
    return {
        row["device_id"]: row for row in dicts(conn.execute(_FACTS_SQL.format(where=where), params))
    }
