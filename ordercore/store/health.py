"""SQL of the order core's health check. Functions of a sqlite3 connection."""

from __future__ import annotations

import sqlite3

__all__ = ["delivery_backlog"]


def delivery_backlog(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Webhook deliveries still pending: how many, and the oldest one's ``created_on``."""
    row = conn.execute(
        "SELECT COUNT(*), MIN(created_on) FROM deliveries WHERE state = 'pending'"
    ).fetchone()
    return int(row[0]), row[1]
