"""SQL of the audit trail: who changed what, one row per operator or API action.

The registry and the order outbox write their own rows in the transaction of the change they
audit; this module is for actions that change nothing else (a simulated press).
"""

from __future__ import annotations

from edgeorder.ingest.store.database import Conn

__all__ = ["BROKER_CHANGES", "BROKER_FILES_WRITTEN", "pending_broker_changes", "record"]

BROKER_CHANGES = (
    "device.add",
    "device.enable",
    "device.disable",
    "device.remove",
    "device.rotate_credentials",
    "service_account.ensure",
)
"""Audit actions that change Mosquitto's password file."""
BROKER_FILES_WRITTEN = "broker.files_written"
"""Audit action of ``edgeorder broker-auth`` writing the broker's files."""


def record(
    conn: Conn,
    *,
    at: str,
    actor: str,
    action: str,
    device_id: str | None = None,
    event_id: str | None = None,
    detail: str = "",
) -> None:
    """One audit row (``actor``: an operator's name, ``token:NAME`` for an API token)."""
    conn.execute(
        "INSERT INTO audit (at, actor, action, device_id, event_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, action, device_id, event_id, detail),
    )


def pending_broker_changes(conn: Conn) -> int:
    """Registry changes the broker's files do not have yet (made after broker-auth's last run;
    audit ids, not timestamps, order them)."""
    marks = ",".join("?" * len(BROKER_CHANGES))
    row = conn.execute(
        f"SELECT COUNT(*) FROM audit WHERE action IN ({marks}) AND id > "
        "COALESCE((SELECT MAX(id) FROM audit WHERE action = ?), 0)",
        (*BROKER_CHANGES, BROKER_FILES_WRITTEN),
    ).fetchone()
    return int(row[0])
