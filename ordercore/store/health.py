"""SQL of the order core's health check and metrics. Functions of a sqlite3 connection."""

from __future__ import annotations

import sqlite3

__all__ = ["delivery_backlog", "orders_by_status"]


def delivery_backlog(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Webhook deliveries still pending: how many, and the oldest one's ``created_on``."""
    row = conn.execute(
        "SELECT COUNT(*), MIN(created_on) FROM deliveries WHERE state = 'pending'"
    ).fetchone()
    return int(row[0]), row[1]


def orders_by_status(conn: sqlite3.Connection) -> dict[int, int]:
    """How many orders are in each status code (codes without orders are absent)."""
    rows = conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall()
    return {int(r[0]): int(r[1]) for r in rows}
