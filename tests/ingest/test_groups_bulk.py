"""Tags, sites and bulk actions in the store, on SQLite and PostgreSQL: limits, filters,
all-or-nothing with per-device errors, and the audit trail."""

from __future__ import annotations

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.domain.groups import TAGS_MAX, check_site, check_tag, check_tags
from edgeorder.ingest.store import groups, registry
from edgeorder.ingest.store.bulk import BULK_MAX, BulkError, BulkRequest, apply_bulk
from edgeorder.ingest.store.database import Conn, Database

MAPPING = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG"))


def add(conn: Conn, device_id: str, **kw: object) -> None:
    registry.add_device(conn, device_id, mapping=MAPPING, **kw)  # type: ignore[arg-type]


def audit(conn: Conn) -> list[tuple[str, str | None, str]]:
    rows = conn.execute("SELECT action, device_id, detail FROM audit ORDER BY id").fetchall()
    return [(a, d, t) for a, d, t in rows if a != "device.add"]


def test_tag_and_site_limits() -> None:
    assert check_tag(" floor-2 ") == "floor-2"
    assert check_tags(["b", "a", "b"]) == ["a", "b"]
    for bad in ("", "-x", "a b", "x" * 33, "é"):
        with pytest.raises(ValueError, match="tag"):
            check_tag(bad)
    with pytest.raises(ValueError, match=f"at most {TAGS_MAX} tags"):
        check_tags([f"t{n}" for n in range(TAGS_MAX + 1)])
    assert check_site("  Lisbon store ") == "Lisbon store"
    with pytest.raises(ValueError, match="at most 64"):
        check_site("x" * 65)
    with pytest.raises(ValueError, match="control"):
        check_site("a\nb")


def test_tags_and_sites_are_stored_and_filtered(database: Database) -> None:
    with database.open() as conn:
        add(conn, "k-01", tags=["kitchen", "pilot"], site="Lisbon")
        add(conn, "k-02", tags=["kitchen"])
        add(conn, "b-01", site="Porto")
        with pytest.raises(registry.RegistryError, match="tag"):
            add(conn, "bad-01", tags=["no spaces"])
        assert registry.get_device(conn, "k-01")["tags"] == ["kitchen", "pilot"]
        assert registry.get_device(conn, "k-01")["site"] == "Lisbon"
        ids = lambda **kw: [d["device_id"] for d in registry.list_devices(conn, **kw)]  # noqa: E731
        assert ids(tag="kitchen") == ["k-01", "k-02"]
        assert ids(tag="kitchen", site="Lisbon") == ["k-01"]
        assert ids(site="Porto") == ["b-01"]
        assert ids(tag="none") == []
        assert groups.set_tags(conn, "b-01", ["bar", "bar", "pilot"], actor="op") == [
            "bar",
            "pilot",
        ]
        assert groups.set_site(conn, "k-02", " Lisbon ", actor="op") == "Lisbon"
        assert groups.all_tags(conn) == [("bar", 1), ("kitchen", 2), ("pilot", 2)]
        assert groups.all_sites(conn) == [("Lisbon", 2), ("Porto", 1)]
        assert groups.remove_tag(conn, "k-01", "pilot", actor="op") is True
        assert groups.remove_tag(conn, "k-01", "pilot", actor="op") is False
        with pytest.raises(registry.UnknownDeviceError):
            groups.set_site(conn, "nope", "x")
        registry.remove_device(conn, "k-01")
        assert groups.all_tags(conn) == [("bar", 1), ("kitchen", 1), ("pilot", 1)]
        assert ("device.set_site", "k-02", "Lisbon") in audit(conn)


def test_a_bulk_action_changes_every_device_or_none(database: Database) -> None:
    with database.open() as conn:
        for device_id in ("a-01", "a-02", "a-03"):
            add(conn, device_id)
        versions = {d["device_id"]: d["config_version"] for d in registry.list_devices(conn)}
        done = apply_bulk(conn, BulkRequest("set_env", ("a-01", "a-02"), env="dev"), actor="op")
        assert (done.changed, done.config_changed) == (["a-01", "a-02"], ["a-01", "a-02"])
        rows = {d["device_id"]: d for d in registry.list_devices(conn)}
        assert [rows[d]["env"] for d in ("a-01", "a-02", "a-03")] == ["dev", "dev", "prod"]
        assert rows["a-01"]["config_version"] == versions["a-01"] + 1

        with pytest.raises(BulkError) as err:  # one unknown device: nobody is disabled
            apply_bulk(conn, BulkRequest("disable", ("a-01", "ghost", "a-02")), actor="op")
        assert err.value.errors == {"ghost": "unknown device 'ghost'"}
        assert all(d["enabled"] for d in registry.list_devices(conn))

        apply_bulk(conn, BulkRequest("add_tag", ("a-01", "a-03"), tag="pilot"), actor="op")
        groups.set_tags(conn, "a-02", [f"t{n}" for n in range(TAGS_MAX)])
        with pytest.raises(BulkError) as err:  # a-02 is full: a-01 keeps only what it had
            apply_bulk(conn, BulkRequest("add_tag", ("a-01", "a-02"), tag="more"), actor="op")
        assert list(err.value.errors) == ["a-02"]
        assert registry.get_device(conn, "a-01")["tags"] == ["pilot"]

        apply_bulk(conn, BulkRequest("disable", ("a-01", "a-02", "a-01")), actor="op")
        assert [d["enabled"] for d in registry.list_devices(conn)] == [False, False, True]
        trail = audit(conn)
        assert ("device.bulk", None, "disable: a-01, a-02") in trail
        assert ("device.disable", "a-02", "") in trail
        assert not [t for t in trail if t[0] == "device.bulk" and "ghost" in t[2]]


@pytest.mark.parametrize(
    ("req", "says"),
    [
        (BulkRequest("set_env", ("a",)), "env dev or prod"),
        (BulkRequest("add_tag", ("a",), tag="no good"), "tag"),
        (BulkRequest("enable", ()), "no device selected"),
        (BulkRequest("enable", tuple(f"d{n}" for n in range(BULK_MAX + 1))), "at most"),
        (BulkRequest("explode", ("a",)), "action must be one of"),  # type: ignore[arg-type]
    ],
)
def test_a_wrong_request_is_refused_as_a_whole(req: BulkRequest, says: str) -> None:
    with pytest.raises(registry.RegistryError, match=says):
        req.check()
