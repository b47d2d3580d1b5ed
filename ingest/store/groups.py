"""Tags and sites of devices (SQL for both backends; limits in ``ingest.domain.groups``).

Every change writes one ``audit`` row per device in the same transaction, like the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from edgeorder import protocol as p
from edgeorder.ingest.domain.groups import check_site, check_tag, check_tags
from edgeorder.ingest.store.database import Conn, handle
from edgeorder.ingest.store.registry import RegistryError, UnknownDeviceError
from edgeorder.kit import transaction

if TYPE_CHECKING:
    from edgeorder.ingest.store.registry import Db

__all__ = [
    "add_tag",
    "all_sites",
    "all_tags",
    "attach",
    "remove_tag",
    "set_site",
    "set_tags",
    "tags_by_device",
]


def _checked(fn: Any, value: Any) -> Any:
    try:
        return fn(value)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc


def _audit(conn: Conn, actor: str, action: str, device_id: str, detail: str) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, device_id, detail) VALUES (?, ?, ?, ?, ?)",
        [p.format_ts(p.utcnow()), actor, action, device_id, detail],
    )


def _exists(conn: Conn, device_id: str) -> None:
    if conn.execute("SELECT 1 FROM devices WHERE device_id = ?", [device_id]).fetchone() is None:
        raise UnknownDeviceError(f"unknown device {device_id!r}")


def tags_by_device(db: Db, device_ids: Iterable[str] | None = None) -> dict[str, list[str]]:
    """``device_id -> sorted tags`` (every device's, or those of ``device_ids``)."""
    conn = handle(db)
    rows = conn.execute("SELECT device_id, tag FROM device_tags ORDER BY device_id, tag")
    wanted = None if device_ids is None else set(device_ids)
    out: dict[str, list[str]] = {}
    for device_id, tag in rows.fetchall():
        if wanted is None or device_id in wanted:
            out.setdefault(device_id, []).append(tag)
    return out


def attach(db: Db, rows: list[dict[str, Any]]) -> None:
    """Give each device row (the fleet's) its ``tags`` and ``site``."""
    if not rows:
        return
    conn = handle(db)
    tags = tags_by_device(conn)
    sites = dict(conn.execute("SELECT device_id, site FROM devices").fetchall())
    for row in rows:
        row["tags"] = tags.get(row["device_id"], [])
        row["site"] = sites.get(row["device_id"]) or ""


def all_tags(db: Db) -> list[tuple[str, int]]:
    """Every tag in use with its device count, by tag."""
    rows = (
        handle(db)
        .execute("SELECT tag, COUNT(*) FROM device_tags GROUP BY tag ORDER BY tag")
        .fetchall()
    )
    return [(str(t), int(n)) for t, n in rows]


def all_sites(db: Db) -> list[tuple[str, int]]:
    """Every site in use with its device count, by site."""
    rows = (
        handle(db)
        .execute("SELECT site, COUNT(*) FROM devices WHERE site <> '' GROUP BY site ORDER BY site")
        .fetchall()
    )
    return [(str(s), int(n)) for s, n in rows]


def set_tags(db: Db, device_id: str, tags: Iterable[str], *, actor: str = "system") -> list[str]:
    """Replace the device's tags; returns them (checked, sorted)."""
    found: list[str] = _checked(check_tags, list(tags))
    with transaction(handle(db)) as conn:
        _exists(conn, device_id)
        conn.execute("DELETE FROM device_tags WHERE device_id = ?", [device_id])
        for tag in found:
            conn.execute("INSERT INTO device_tags (device_id, tag) VALUES (?, ?)", [device_id, tag])
        _audit(conn, actor, "device.set_tags", device_id, ",".join(found))
    return found


def add_tag(db: Db, device_id: str, tag: str, *, actor: str = "system") -> bool:
    """Give the device ``tag``; False when it had it already. RegistryError past the limit."""
    tag = _checked(check_tag, tag)
    with transaction(handle(db)) as conn:
        _exists(conn, device_id)
        have = tags_by_device(conn, [device_id]).get(device_id, [])
        if tag in have:
            return False
        _checked(check_tags, [*have, tag])
        conn.execute("INSERT INTO device_tags (device_id, tag) VALUES (?, ?)", [device_id, tag])
        _audit(conn, actor, "device.add_tag", device_id, tag)
    return True


def remove_tag(db: Db, device_id: str, tag: str, *, actor: str = "system") -> bool:
    """Take ``tag`` off the device; False when it did not have it."""
    tag = _checked(check_tag, tag)
    with transaction(handle(db)) as conn:
        _exists(conn, device_id)
        gone = conn.execute(
            "DELETE FROM device_tags WHERE device_id = ? AND tag = ? RETURNING tag",
            [device_id, tag],
        ).fetchone()
        if gone is None:
            return False
        _audit(conn, actor, "device.remove_tag", device_id, tag)
    return True


def set_site(db: Db, device_id: str, site: str, *, actor: str = "system") -> str:
    """Set (or, with '', clear) the device's site; returns it as stored."""
    site = _checked(check_site, site)
    with transaction(handle(db)) as conn:
        found = conn.execute(
            "UPDATE devices SET site = ?, updated_at = ? WHERE device_id = ? RETURNING device_id",
            [site, p.format_ts(p.utcnow()), device_id],
        ).fetchone()
        if found is None:
            raise UnknownDeviceError(f"unknown device {device_id!r}")
        _audit(conn, actor, "device.set_site", device_id, site)
    return site
