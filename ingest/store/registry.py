"""The device registry: devices, their button mappings and MQTT credentials, service accounts.

Plain functions over a connection of either backend (``Conn``; a ``sqlite_utils.Database``'s
too) shared by the CLI, the REST API, the dashboard and the demo. Every mutation writes one
``audit`` row in the same transaction (a savepoint inside the writer's group commit).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.domain.broker_access import AccountRole, BrokerRole
from edgeorder.ingest.domain.credentials import generate_password, hash_password
from edgeorder.ingest.domain.devices import (
    DEFAULT_CANCEL_WINDOW_S,
    Device,
    Env,
    check_cancel_window,
    check_name,
)
from edgeorder.ingest.domain.groups import check_site, check_tags
from edgeorder.ingest.store.database import Conn, dicts, handle
from edgeorder.kit import transaction

if TYPE_CHECKING:
    import sqlite_utils

    Db = Conn | sqlite_utils.Database

__all__ = [
    "Device",
    "DeviceExistsError",
    "RegistryError",
    "UnknownDeviceError",
    "account_roles",
    "add_device",
    "broker_account",
    "device_hashes",
    "ensure_service_account",
    "get_device",
    "list_devices",
    "load_devices",
    "remove_device",
    "rotate_credentials",
    "service_account_hashes",
    "service_accounts",
    "set_enabled",
    "set_env",
    "update_mapping",
]


log = structlog.get_logger(__name__)


class RegistryError(ValueError):
    """A registry operation that cannot be done as asked."""


class UnknownDeviceError(RegistryError, KeyError):
    """No device with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown device"


class DeviceExistsError(RegistryError):
    """``add_device`` for an id that is already registered."""


def _now() -> str:
    return p.format_ts(p.utcnow())


def _audit(conn: Conn, actor: str, action: str, device_id: str | None, detail: str = "") -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, device_id, detail) VALUES (?, ?, ?, ?, ?)",
        [_now(), actor, action, device_id, detail],
    )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A device row without its password hash, JSON columns decoded."""
    out = {k: v for k, v in row.items() if k != "mqtt_hash"}
    out["mapping"] = json.loads(row["mapping"])
    out["profile"] = json.loads(row["profile"] or "{}")
    for key in ("enabled", "allow_parallel", "simulated"):
        out[key] = bool(row[key])
    return out


def add_device(
    db: Db,
    device_id: str,
    *,
    name: str = "",
    mapping: p.ButtonMapping,
    env: Env = "prod",
    simulated: bool = False,
    allow_parallel: bool = False,
    cancel_window_s: int = DEFAULT_CANCEL_WINDOW_S,
    profile: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    site: str = "",
    actor: str = "system",
) -> tuple[dict[str, Any], str]:
    """Register a device; returns ``(row, password)``. The password is never stored in clear.
    Values outside the limits of ``domain.devices`` raise RegistryError."""
    if not p.is_valid_device_id(device_id):
        raise RegistryError(f"invalid device id {device_id!r}: 1-64 of [A-Za-z0-9_-]")
    if env not in ("dev", "prod"):
        raise RegistryError(f"env must be dev or prod, not {env!r}")
    try:
        check_cancel_window(cancel_window_s)
        check_name(name)
        tags, site = check_tags(tags or []), check_site(site)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc
    password = generate_password()
    now = _now()
    with transaction(handle(db)) as conn:
        if conn.execute("SELECT 1 FROM devices WHERE device_id = ?", [device_id]).fetchone():
            raise DeviceExistsError(f"device {device_id!r} already exists")
        conn.execute(
            "INSERT INTO devices (device_id, name, env, enabled, mapping, allow_parallel, "
            "cancel_window_s, profile, config_version, mqtt_hash, simulated, site, created_at, "
            "updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            [
                device_id,
                name,
                env,
                mapping.model_dump_json(),
                int(allow_parallel),
                cancel_window_s,
                json.dumps(profile or {}),
                hash_password(password),
                int(simulated),
                site,
                now,
                now,
            ],
        )
        for tag in tags:
            conn.execute("INSERT INTO device_tags (device_id, tag) VALUES (?, ?)", [device_id, tag])
        _audit(conn, actor, "device.add", device_id, f"env={env}")
        return get_device(conn, device_id), password


def _row(db: Db, device_id: str) -> dict[str, Any]:
    found = dicts(handle(db).execute("SELECT * FROM devices WHERE device_id = ?", [device_id]))
    if not found:
        raise UnknownDeviceError(f"unknown device {device_id!r}")
    return found[0]


def _tags(db: Db, device_id: str | None = None) -> dict[str, list[str]]:
    """``device_id -> sorted tags`` of one device, or of all (``ingest.store.groups``)."""
    sql, args = "SELECT device_id, tag FROM device_tags", []
    if device_id is not None:
        sql, args = sql + " WHERE device_id = ?", [device_id]
    out: dict[str, list[str]] = {}
    for dev, tag in handle(db).execute(sql + " ORDER BY device_id, tag", args).fetchall():
        out.setdefault(dev, []).append(tag)
    return out


def get_device(db: Db, device_id: str) -> dict[str, Any]:
    """The device's public row (no hash) with its tags; raises UnknownDeviceError."""
    row = _public(_row(db, device_id))
    row["tags"] = _tags(db, device_id).get(device_id, [])
    return row


def list_devices(
    db: Db, *, tag: str | None = None, site: str | None = None
) -> list[dict[str, Any]]:
    """Every device's public row with its tags, by id; only those with ``tag`` / at ``site``
    when given."""
    where, args = [], []
    if tag is not None:
        where.append("device_id IN (SELECT device_id FROM device_tags WHERE tag = ?)")
        args.append(tag)
    if site is not None:
        where.append("site = ?")
        args.append(site)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    conn = handle(db)
    rows = dicts(conn.execute(f"SELECT * FROM devices{clause} ORDER BY device_id", args))
    tags = _tags(conn) if rows else {}
    out = [_public(row) for row in rows]
    for row in out:
        row["tags"] = tags.get(row["device_id"], [])
    return out


def registry_mark(db: Db) -> int:
    """The newest audit row's id: it moves with every registry change (each writes an audit
    row in its own transaction), whichever process made it."""
    row = handle(db).execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()
    return int(row[0])


def load_devices(db: Db) -> dict[str, Device]:
    """Every usable device as a ``Device`` (the event path's in-memory cache). A row the
    event path cannot use (written before a limit existed, or by hand) is left out and
    logged, instead of failing the whole cache (and ingest's start) with it: its events are
    then rejected as from an unknown device until it is fixed."""
    devices: dict[str, Device] = {}
    for row in dicts(handle(db).execute("SELECT * FROM devices")):
        try:
            devices[row["device_id"]] = Device.from_row(row)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("registry.device_unusable", device_id=row.get("device_id"), error=str(exc))
    return devices


def _update(
    db: Db,
    device_id: str,
    actor: str,
    action: str,
    detail: str,
    sets: str,
    params: list[Any],
) -> dict[str, Any]:
    with transaction(handle(db)) as conn:
        found = conn.execute(
            f"UPDATE devices SET {sets}, updated_at = ? WHERE device_id = ? RETURNING device_id",
            [*params, _now(), device_id],
        ).fetchone()
        if found is None:
            raise UnknownDeviceError(f"unknown device {device_id!r}")
        _audit(conn, actor, action, device_id, detail)
        return get_device(conn, device_id)


def set_enabled(db: Db, device_id: str, enabled: bool, *, actor: str = "system") -> dict[str, Any]:
    """Enable or disable a device (a disabled device's events are rejected)."""
    action = "device.enable" if enabled else "device.disable"
    return _update(db, device_id, actor, action, "", "enabled = ?", [int(enabled)])


def set_env(db: Db, device_id: str, env: Env, *, actor: str = "system") -> dict[str, Any]:
    """Switch a device between ``dev`` (Test orders) and ``prod``; bumps config_version."""
    if env not in ("dev", "prod"):
        raise RegistryError(f"env must be dev or prod, not {env!r}")
    return _update(
        db,
        device_id,
        actor,
        "device.set_env",
        f"env={env}",
        "env = ?, config_version = config_version + 1",
        [env],
    )


def update_mapping(
    db: Db, device_id: str, mapping: p.ButtonMapping, *, actor: str = "system"
) -> dict[str, Any]:
    """Replace the device's button mapping and bump its config_version."""
    return _update(
        db,
        device_id,
        actor,
        "device.update_mapping",
        mapping.model_dump_json(),
        "mapping = ?, config_version = config_version + 1",
        [mapping.model_dump_json()],
    )


def rotate_credentials(db: Db, device_id: str, *, actor: str = "system") -> str:
    """A new MQTT password for the device (returned once; only its hash is stored)."""
    password = generate_password()
    _update(
        db,
        device_id,
        actor,
        "device.rotate_credentials",
        "",
        "mqtt_hash = ?",
        [hash_password(password)],
    )
    return password


def remove_device(db: Db, device_id: str, *, actor: str = "system") -> None:
    """Delete the device from the registry (its events and orders stay as history)."""
    with transaction(handle(db)) as conn:
        conn.execute("DELETE FROM device_tags WHERE device_id = ?", [device_id])
        found = conn.execute(
            "DELETE FROM devices WHERE device_id = ? RETURNING device_id", [device_id]
        ).fetchone()
        if found is None:
            raise UnknownDeviceError(f"unknown device {device_id!r}")
        _audit(conn, actor, "device.remove", device_id)


def ensure_service_account(
    db: Db,
    username: str,
    password: str,
    *,
    role: AccountRole = "service",
    actor: str = "system",
) -> None:
    """Create or re-key the MQTT account ``username`` with ``role``: ``service`` (ingest's
    own: reads and writes every device topic) or ``observer`` (Home Assistant: reads only)."""
    with transaction(handle(db)) as conn:
        conn.execute(
            "INSERT INTO service_accounts (username, mqtt_hash, created_at, role) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET "
            "mqtt_hash = excluded.mqtt_hash, role = excluded.role",
            [username, hash_password(password), _now(), role],
        )
        _audit(conn, actor, "service_account.ensure", None, f"{username} ({role})")


def device_hashes(db: Db) -> dict[str, str]:
    """``device_id -> $7$ hash`` of every enabled device."""
    rows = (
        handle(db).execute("SELECT device_id, mqtt_hash FROM devices WHERE enabled = 1").fetchall()
    )
    return {device_id: hashed for device_id, hashed in rows}


def service_account_hashes(db: Db) -> dict[str, str]:
    """``username -> $7$ hash`` of every account (services and observers)."""
    rows = handle(db).execute("SELECT username, mqtt_hash FROM service_accounts").fetchall()
    return {username: hashed for username, hashed in rows}


def account_roles(db: Db) -> dict[str, AccountRole]:
    """``username -> role`` of every account (services and observers)."""
    rows = handle(db).execute("SELECT username, role FROM service_accounts").fetchall()
    return {username: _role(role) for username, role in rows}


def broker_account(db: Db, username: str) -> tuple[str, BrokerRole] | None:
    """``(hash, role)`` of an MQTT username that may connect: an enabled device (role
    ``device``) or an account (``service``, ``observer``); None for anyone else (unknown, or a
    disabled device)."""
    conn = handle(db)
    row = conn.execute(
        "SELECT mqtt_hash, role FROM service_accounts WHERE username = ?", [username]
    )
    found = row.fetchone()
    if found is not None:
        return str(found[0]), _role(found[1])
    found = conn.execute(
        "SELECT mqtt_hash FROM devices WHERE device_id = ? AND enabled = 1", [username]
    ).fetchone()
    return None if found is None else (str(found[0]), "device")


def _role(value: object) -> AccountRole:
    """A stored role; anything unknown reads as the least: ``observer``."""
    return "service" if value == "service" else "observer"


def service_accounts(db: Db) -> list[str]:
    """Every account's username (services and observers)."""
    rows = handle(db).execute("SELECT username FROM service_accounts ORDER BY username")
    return [r[0] for r in rows.fetchall()]
