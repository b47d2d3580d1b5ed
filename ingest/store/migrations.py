"""Numbered schema migrations. Append a new tuple to ``MIGRATIONS``; never edit a shipped one.

One schema for both backends: the statements are written for SQLite and rendered for
PostgreSQL (``postgres_steps``: 64-bit ``BIGINT`` for ``INTEGER``, identity primary keys); the
rare statement that cannot be said the same way in both is a ``Dialects`` pair.

Times are ISO-8601 UTC strings (``protocol.format_ts``) so they sort and read the same in SQL,
logs and JSON, on both backends. JSON columns hold compact JSON text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Dialects", "postgres_steps", "sqlite_steps"]


@dataclass(frozen=True)
class Dialects:
    """One statement said twice; ``postgres=None``: nothing to do there."""

    sqlite: str
    postgres: str | None


_V1 = (
    # --- registry -------------------------------------------------------------------------
    """CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        env TEXT NOT NULL DEFAULT 'prod' CHECK (env IN ('dev', 'prod')),
        enabled INTEGER NOT NULL DEFAULT 1,
        mapping TEXT NOT NULL,               -- protocol.ButtonMapping as JSON
        allow_parallel INTEGER NOT NULL DEFAULT 0,  -- 1: no order-in-flight throttle
        cancel_window_s INTEGER NOT NULL DEFAULT 300,
        profile TEXT NOT NULL DEFAULT '{}',  -- buyer: Customer/Shipping/PaymentMethod (BlackBox)
        config_version INTEGER NOT NULL DEFAULT 1,
        mqtt_hash TEXT NOT NULL,             -- Mosquitto $7$ PBKDF2-SHA512 hash
        simulated INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE service_accounts (
        username TEXT PRIMARY KEY,
        mqtt_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    # --- device state reported over MQTT --------------------------------------------------
    """CREATE TABLE presence (
        device_id TEXT PRIMARY KEY,
        online INTEGER NOT NULL,
        fw TEXT NOT NULL DEFAULT '',
        ts TEXT NOT NULL,
        received_at TEXT NOT NULL
    )""",
    """CREATE TABLE telemetry (
        device_id TEXT PRIMARY KEY,          -- latest heartbeat only
        uptime_s INTEGER NOT NULL,
        queue_depth INTEGER NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0,
        fw TEXT NOT NULL DEFAULT '',
        extra TEXT NOT NULL DEFAULT '{}',
        received_at TEXT NOT NULL
    )""",
    """CREATE TABLE config_reported (
        device_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        ts TEXT NOT NULL,
        received_at TEXT NOT NULL
    )""",
    # --- the exactly-once chain -----------------------------------------------------------
    """CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        payload_hash TEXT NOT NULL,          -- sha256 of the canonical event JSON
        payload TEXT NOT NULL,
        kind TEXT NOT NULL,
        trigger TEXT NOT NULL,               -- single/double/long or sensor:NAME
        seq INTEGER NOT NULL,
        ts TEXT NOT NULL,                    -- the device's timestamp
        received_at TEXT NOT NULL,
        action TEXT NOT NULL,                -- the rule's decision as JSON
        state TEXT NOT NULL,                 -- latest protocol.State sent for this event
        order_id TEXT,
        reason TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE (device_id, event_id)
    )""",
    "CREATE INDEX inbox_device_received ON inbox (device_id, received_at)",
    "CREATE INDEX inbox_received ON inbox (received_at)",
    """CREATE TABLE order_outbox (
        id INTEGER PRIMARY KEY,
        inbox_id INTEGER NOT NULL UNIQUE REFERENCES inbox (id),
        device_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('create', 'cancel')),
        sku TEXT,
        quantity INTEGER,
        test INTEGER NOT NULL DEFAULT 0,
        target_order_id TEXT,                -- for op = 'cancel'
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'done', 'failed', 'discarded')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX order_outbox_due ON order_outbox (state, next_attempt_at)",
    """CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,           -- the platform's id
        inbox_id INTEGER NOT NULL UNIQUE REFERENCES inbox (id),
        device_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount INTEGER,                      -- cents, as the platform computed it
        currency TEXT,
        test INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,                 -- ordered/paid/shipped/delivered/cancelled
        platform_status INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX orders_device_sku_state ON orders (device_id, sku, state)",
    "CREATE INDEX orders_created ON orders (created_at)",
    """CREATE TABLE status_history (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        event_id TEXT,
        state TEXT NOT NULL,
        order_id TEXT,
        reason TEXT,
        source TEXT NOT NULL DEFAULT 'ingest',  -- ingest / webhook / poll / operator
        at TEXT NOT NULL
    )""",
    "CREATE INDEX status_history_event ON status_history (device_id, event_id)",
    "CREATE INDEX status_history_at ON status_history (at)",
    """CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        device_id TEXT,                      -- NULL when the topic named no valid device
        event_id TEXT,
        code TEXT NOT NULL,                  -- protocol error code / rule reason
        detail TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX rejections_at ON rejections (at)",
    # --- operators (dashboard) ------------------------------------------------------------
    """CREATE TABLE operators (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,         -- argon2id
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,         -- sha256 of the cookie value
        username TEXT NOT NULL REFERENCES operators (username) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    """CREATE TABLE api_tokens (
        token_hash TEXT PRIMARY KEY,         -- sha256 of the bearer token
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,                 -- operator username, 'cli', 'system'
        action TEXT NOT NULL,
        device_id TEXT,
        event_id TEXT,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX audit_device ON audit (device_id, at)",
)

_V2 = (
    # The order-in-flight throttle asks this for every reorder press (ingest.store.ledger).
    "CREATE INDEX order_outbox_device_sku ON order_outbox (device_id, sku, state)",
    "CREATE INDEX orders_device_created ON orders (device_id, created_at)",
)

_V3 = (
    # Tracked status delivery: a history row is unconfirmed until the broker acknowledged its
    # QoS 1 publish (PUBACK); ingest re-publishes the current status of every event with an
    # unconfirmed row at start-up (ingest.mqtt.delivery).
    "ALTER TABLE status_history ADD COLUMN published_at TEXT",
    "CREATE INDEX status_history_unconfirmed ON status_history (id) WHERE published_at IS NULL",
    # Rows written before tracking existed: the old start-up re-published the last 15 minutes,
    # so keep exactly those unconfirmed (same ISO format as protocol.format_ts).
    # (A PostgreSQL ledger starts empty, long after tracking existed: nothing to backfill.)
    Dialects(
        sqlite="UPDATE status_history SET published_at = at "
        "WHERE at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-15 minutes')",
        postgres=None,
    ),
)

_V4 = (
    # e-vendi can only finalize orders that already exist (closeOrder): the operator assigns
    # pending e-vendi orders to a device, and each press claims the oldest one
    # (ingest.store.evendi_assignments). A claim is keyed by the press's event_id, so a retried
    # or redelivered press finds the order it already claimed and never takes a second one.
    """CREATE TABLE evendi_assignments (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        sku TEXT,                            -- NULL: any SKU the device orders
        order_id TEXT NOT NULL UNIQUE,       -- e-vendi's orderId; assigned once, ever
        note TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'claimed', 'closed', 'failed', 'withdrawn')),
        event_id TEXT UNIQUE,                -- the press that claimed it
        attempts INTEGER NOT NULL DEFAULT 0, -- closeOrder calls started (before each call)
        last_error TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        claimed_at TEXT,
        closed_at TEXT,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX evendi_assignments_queue ON evendi_assignments (device_id, state, id)",
    # An order the platform finished in the call that made it (e-vendi's closeOrder) and will
    # never report on again: not in flight for the throttle, not polled.
    "ALTER TABLE orders ADD COLUMN settled INTEGER NOT NULL DEFAULT 0",
)

_V5 = (
    # Several ingest workers share one PostgreSQL ledger: a worker leases the order-outbox rows
    # it hands to the platform (ingest.store.ledger.claim_due), so no other worker calls the
    # platform for them at the same time; a lease that runs out (its worker was killed) lets
    # another take the row over. ``claims`` counts the leases taken: a row leased before may
    # have reached the platform already (the worker then looks before it creates).
    "ALTER TABLE order_outbox ADD COLUMN lease_owner TEXT",
    "ALTER TABLE order_outbox ADD COLUMN lease_until TEXT",
    "ALTER TABLE order_outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0",
    # Rows pending at the upgrade may have been in flight when the old release stopped.
    "UPDATE order_outbox SET claims = 1 WHERE state = 'pending'",
)

_V6 = (
    # Alerts (ingest.alerting): one row per alert, ThingsBoard-style lifecycle active ->
    # acknowledged -> cleared; a condition that recurs after its alert cleared opens a new row.
    # ``subject`` is the device id, or '' for a fleet-wide alert: the partial unique index then
    # keeps one open alert per (kind, subject) even when several workers evaluate at once
    # (a NULL device id would not collide in a unique index).
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        device_id TEXT,
        state TEXT NOT NULL DEFAULT 'active'
            CHECK (state IN ('active', 'acknowledged', 'cleared')),
        since TEXT NOT NULL,                 -- when the condition began (offline since, ...)
        detail TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        ok_since TEXT,                       -- condition gone since (the clear hold runs)
        acknowledged_by TEXT,
        acknowledged_at TEXT,
        cleared_at TEXT,
        updated_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX alerts_open ON alerts (kind, subject) WHERE state <> 'cleared'",
    "CREATE INDEX alerts_state ON alerts (state, opened_at)",
    # One row per (alert transition, channel), written in the transaction of the transition:
    # a transition happens once (a conditional UPDATE/INSERT), so its message is queued once;
    # a worker leases the row while it sends (as the order outbox), so no two send it.
    """CREATE TABLE alert_notifications (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts (id),
        transition TEXT NOT NULL CHECK (transition IN ('opened', 'acknowledged', 'cleared')),
        channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sent', 'failed', 'summarised')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        lease_owner TEXT,
        lease_until TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        UNIQUE (alert_id, transition, channel)
    )""",
    "CREATE INDEX alert_notifications_due ON alert_notifications (state, next_attempt_at)",
    "CREATE INDEX alert_notifications_sent ON alert_notifications (channel, sent_at)",
)

_V7 = (
    # Devices are grouped by tags and a site (ingest.store.groups): the fleet list, the REST
    # API and bulk actions filter by them. (Numbered 7: another change of this release takes
    # 6; on merge the list below is kept in number order.)
    "ALTER TABLE devices ADD COLUMN site TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE device_tags (
        device_id TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (device_id, tag)
    )""",
    "CREATE INDEX device_tags_tag ON device_tags (tag, device_id)",
)

_V8 = (
    # Heartbeats over time, for the device page's chart (ingest.store.telemetry_history):
    # each heartbeat is kept for --telemetry-history-s, older ones go as new ones arrive.
    """CREATE TABLE telemetry_history (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        uptime_s INTEGER NOT NULL,
        queue_depth INTEGER NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0,
        extra TEXT NOT NULL DEFAULT '{}',    -- the numeric extra fields (sensor readings)
        received_at TEXT NOT NULL
    )""",
    "CREATE INDEX telemetry_history_device_at ON telemetry_history (device_id, received_at)",
    # The orders CSV export pages by (created_at, order_id) (ingest.store.history).
    "CREATE INDEX orders_created_id ON orders (created_at, order_id)",
    # The LED the dashboard shows comes from each device's latest confirmed status.
    "CREATE INDEX status_history_device_published ON status_history (device_id, published_at)",
)

_V9 = (
    # An account's role (ingest.domain.broker_access): 'service' reads and writes every device
    # topic and the discovery tree (ingest); 'observer' only reads them (Home Assistant).
    "ALTER TABLE service_accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'service'",
)

MIGRATIONS: list[tuple[str | Dialects, ...]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9]
"""``MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1`` (SQLite: ``PRAGMA
user_version``; PostgreSQL: the ``edgeorder_schema`` table)."""


def sqlite_steps() -> list[tuple[str, ...]]:
    """The migrations as SQLite runs them."""
    return [tuple(s.sqlite if isinstance(s, Dialects) else s for s in step) for step in MIGRATIONS]


def postgres_steps() -> list[tuple[str, ...]]:
    """The migrations as PostgreSQL runs them."""
    steps = []
    for step in MIGRATIONS:
        statements = [s.postgres if isinstance(s, Dialects) else render(s) for s in step]
        steps.append(tuple(s for s in statements if s is not None))
    return steps


def render(statement: str) -> str:
    """A statement written for SQLite, for PostgreSQL: ``INTEGER`` is 64-bit in SQLite, so
    ``BIGINT`` there, and an ``INTEGER PRIMARY KEY`` (SQLite's rowid) an identity column;
    ``TEXT`` compares byte by byte (``COLLATE "C"``), as SQLite's BINARY does, whatever the
    database's locale: ids sort the same, and ISO timestamps compare as times."""
    statement = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', statement)
    statement = re.sub(
        r"\bINTEGER PRIMARY KEY\b",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        statement,
    )
    return re.sub(r"\bINTEGER\b", "BIGINT", statement)
