"""Numbered schema migrations. Append new ones; never edit an applied one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from edgeorder.kit import migrate as kit_migrate

__all__ = ["MIGRATIONS", "migrate"]

_V1 = """
CREATE TABLE merchants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE skus (
    sku_id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL,
    sku TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    price INTEGER NOT NULL,
    currency TEXT NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants(id)
);
CREATE TABLE checkouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_on TEXT NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checkout_id INTEGER NOT NULL REFERENCES checkouts(id),
    created_on TEXT NOT NULL,
    updated_on TEXT NOT NULL,
    status INTEGER NOT NULL,
    merchant_id TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    customer TEXT NOT NULL,
    shipping TEXT,
    payment TEXT,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    device_id TEXT,
    test INTEGER NOT NULL DEFAULT 0,
    closed_on TEXT,
    cancelled_on TEXT,
    cancel_reason TEXT
);
CREATE INDEX orders_checkout ON orders(checkout_id);
CREATE INDEX orders_status ON orders(status);
CREATE INDEX orders_merchant ON orders(merchant_id);
CREATE INDEX orders_device ON orders(device_id);
CREATE INDEX orders_created ON orders(created_on);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL,
    sku_id INTEGER NOT NULL,
    sku TEXT NOT NULL,
    description TEXT NOT NULL,
    amount INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    status INTEGER NOT NULL
);
CREATE INDEX order_items_order ON order_items(order_id);
CREATE TABLE order_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    status INTEGER NOT NULL,
    field TEXT NOT NULL,
    from_value TEXT,
    to_value TEXT
);
CREATE INDEX order_history_order ON order_history(order_id, id);
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_ts REAL NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_ts);
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_on TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id INTEGER NOT NULL REFERENCES webhooks(id),
    event TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_on TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ts REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_on TEXT
);
CREATE INDEX deliveries_pending ON deliveries(webhook_id, state, id);
"""


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)


_V2 = """
ALTER TABLE orders ADD COLUMN user_id TEXT;
ALTER TABLE orders ADD COLUMN app_id TEXT;
ALTER TABLE orders ADD COLUMN note TEXT;
ALTER TABLE orders ADD COLUMN owner_note TEXT;
ALTER TABLE orders ADD COLUMN paid_on TEXT;
ALTER TABLE orders ADD COLUMN cancel_restock INTEGER;
ALTER TABLE orders ADD COLUMN cancel_notify INTEGER;
UPDATE orders SET user_id = json_extract(customer, '$.UserId');
CREATE INDEX orders_user ON orders(user_id);
CREATE INDEX orders_app ON orders(app_id);
ALTER TABLE webhooks ADD COLUMN owner TEXT NOT NULL DEFAULT 'admin';
CREATE TABLE idempotency_keys_v2 (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_ts REAL NOT NULL,
    PRIMARY KEY (owner, key)
);
INSERT INTO idempotency_keys_v2 (owner, key, body_hash, status, response, created_ts)
    SELECT '', key, body_hash, status, response, created_ts FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_v2 RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_ts);
CREATE TABLE order_values (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    status TEXT NOT NULL,
    total_delta INTEGER NOT NULL,
    total_paid_diff INTEGER NOT NULL DEFAULT 0,
    gateway_method TEXT,
    gateway_name TEXT,
    closed_on TEXT,
    happened_on TEXT NOT NULL
);
CREATE INDEX order_values_order ON order_values(order_id, id);
CREATE TABLE order_edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_changes TEXT NOT NULL,
    value_id INTEGER REFERENCES order_values(id),
    reason TEXT,
    happened_on TEXT NOT NULL
);
CREATE INDEX order_edits_order ON order_edits(order_id, id);
"""
"""Principals (who sent, which app ordered; idempotency keys and webhooks per principal: keys
of before are kept under the legacy owner ''), notes, payment date, cancel flags, and the
values and edits histories of the Nuvemshop lifecycle."""

_PAID = (2, 5, 10)
_CANCELLED = (20, 21, 22)


def _backfill_values(conn: sqlite3.Connection) -> None:
    """One value entry per existing order, as its history tells: pending, paid (when it was
    captured), cancelled unpaid, or paid then refunded by a cancel."""
    orders = conn.execute("SELECT id, status, amount, created_on FROM orders").fetchall()
    for order in orders:
        steps = conn.execute(
            "SELECT at, to_value FROM order_history WHERE order_id = ? AND field = 'Status'"
            " ORDER BY id",
            (order["id"],),
        ).fetchall()
        paid_at = next((s["at"] for s in steps if s["to_value"] in ("2", "10")), None)
        end_at = steps[-1]["at"] if steps else order["created_on"]
        status = "PENDING"
        if paid_at is not None:
            status = "PAID"
        elif order["status"] in _CANCELLED:
            status = "CANCELLED"
        conn.execute(
            "INSERT INTO order_values (order_id, status, total_delta, total_paid_diff,"
            " closed_on, happened_on) VALUES (?, ?, ?, ?, ?, ?)",
            (
                order["id"],
                status,
                order["amount"],
                order["amount"] if status == "PAID" else 0,
                paid_at if status == "PAID" else (end_at if status == "CANCELLED" else None),
                order["created_on"],
            ),
        )
        if paid_at is not None:
            conn.execute("UPDATE orders SET paid_on = ? WHERE id = ?", (paid_at, order["id"]))
        if paid_at is not None and order["status"] in _CANCELLED:
            conn.execute(
                "INSERT INTO order_values (order_id, status, total_delta, total_paid_diff,"
                " closed_on, happened_on) VALUES (?, 'PAID', ?, ?, ?, ?)",
                (order["id"], -order["amount"], -order["amount"], end_at, end_at),
            )


def _v2(conn: sqlite3.Connection) -> None:
    for statement in _V2.split(";"):
        if statement.strip():
            conn.execute(statement)
    _backfill_values(conn)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2]
"""Migration N is ``MIGRATIONS[N - 1]``."""


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration not yet applied, each in its own transaction with its row in
    ``schema_migrations`` (the shared kit's runner); return the version."""
    return kit_migrate(conn, MIGRATIONS, version=_version, set_version=_set_version)


def _version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_on TEXT)"
    )
    return int(
        conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    )


def _set_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_on) VALUES (?, ?)",
        (version, datetime.now(UTC).isoformat()),
    )
