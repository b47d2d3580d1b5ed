"""``HaDiscovery``: which configs it publishes and clears, and what makes it sync -- on a real
SQLite registry, with the broker replaced by a list of publishes (pure bookkeeping)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.cli.run import _parser, build_settings
from edgeorder.ingest.mqtt.homeassistant import HaDiscovery
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.reports import record_presence

SENSOR_MAPPING = p.ButtonMapping(
    single=p.NoAction(), sensors={"level": p.ReorderAction(sku="COFFEE-1KG", quantity=1)}
)


class Broker:
    """What the discovery published, in order; ``retained`` the broker's view."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes]] = []
        self.retained: dict[str, bytes] = {}

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        assert qos == 1
        assert retain
        self.log.append((topic, payload))
        if payload:
            self.retained[topic] = payload
        else:
            self.retained.pop(topic, None)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database.sqlite(tmp_path / "ingest.db")
    mapping = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG", quantity=1))
    with database.open() as conn:
        registry.add_device(conn, "b-1", mapping=mapping, name="Button one")
        registry.add_device(conn, "s-1", mapping=SENSOR_MAPPING)
    return database


def discovery(db: Database, broker: Broker, **kw: Any) -> HaDiscovery:
    async def read(job: Any) -> Any:
        with db.open(migrate=False) as conn:
            return job(conn)

    return HaDiscovery(publish=broker.publish, read=read, bus=Bus(), **kw)


async def test_sync_publishes_changes_only_and_clears_what_is_gone(db: Database) -> None:
    broker = Broker()
    ha = discovery(db, broker, prefix="ha")
    assert await ha.sync() == (5, 0)  # b-1: 3 triggers + sensor; s-1: sensor only
    assert sorted(t.split("/")[2] for t in broker.retained) == ["edgeorder_b-1"] * 4 + [
        "edgeorder_s-1"
    ]
    assert await ha.sync() == (0, 0)  # nothing changed: nothing sent
    assert await ha.sync(force=True) == (5, 0)  # Home Assistant's birth: all again

    now = p.utcnow()
    with db.open(migrate=False) as conn:
        record_presence(conn, "b-1", p.Presence(online=True, fw="3.0", ts=now), now)
        registry.set_enabled(conn, "s-1", False)
    assert await ha.sync() == (4, 1)  # b-1's sw_version; s-1 cleared
    assert all(b'"sw_version":"3.0"' in v for t, v in broker.retained.items())
    assert not [t for t in broker.retained if "s-1" in t]
    with db.open(migrate=False) as conn:
        registry.remove_device(conn, "b-1")
    assert await ha.sync() == (0, 4)
    assert broker.retained == {}


async def test_retained_configs_of_an_earlier_run_are_reconciled(db: Database) -> None:
    broker = Broker()
    ha = discovery(db, broker)
    stale = "homeassistant/sensor/edgeorder_gone-1/order_state/config"
    ha.on_message(stale, b'{"old": true}', True)  # from the broker's retained store
    ha.on_message("homeassistant/sensor/zigbee_x/temp/config", b"{}", True)  # not ours
    assert set(ha.published) == {stale}
    await ha.sync()
    assert (stale, b"") in broker.log


async def test_live_configs_and_empty_payloads_are_not_answered(db: Database) -> None:
    broker = Broker()
    ha = discovery(db, broker)
    await ha.sync()
    topic = "homeassistant/sensor/edgeorder_b-1/order_state/config"
    ha.on_message(topic, b'{"another": "version"}', False)  # another worker's live publish
    assert await ha.sync() == (0, 0)  # no ping-pong between workers of two versions
    ha.on_message(topic, b"", False)  # Home Assistant deleted it
    assert topic not in ha.published


def test_birth_forces_a_full_sync_and_requests_coalesce(db: Database) -> None:
    ha = discovery(db, Broker())
    ha.on_message("homeassistant/status", b"offline", False)
    assert not ha._wanted.is_set()
    ha.on_message("homeassistant/status", b"online", False)
    ha.request()
    assert ha._wanted.is_set()
    assert ha._force


def test_subscriptions_follow_the_prefix(db: Database) -> None:
    assert discovery(db, Broker(), prefix="ha/x").subscriptions == (
        ("ha/x/status", 0),
        ("ha/x/device_automation/+/+/config", 0),
        ("ha/x/sensor/+/+/config", 0),
    )


def args(*argv: str) -> argparse.Namespace:
    return _parser("edgeorder ingest").parse_args(list(argv))


def test_cli_flag_env_and_prefix_check(tmp_path: Path) -> None:
    base = ["--data-dir", str(tmp_path)]
    assert build_settings(args(*base), {}).ha_discovery is False
    on = build_settings(args(*base, "--ha-discovery", "--ha-discovery-prefix", "ha/site"), {})
    assert on.ha_discovery is True
    assert on.ha_discovery_prefix == "ha/site"
    assert build_settings(args(*base), {"EDGEORDER_INGEST_HA_DISCOVERY": "1"}).ha_discovery
    with pytest.raises(ValidationError, match="ha_discovery_prefix"):
        build_settings(args(*base, "--ha-discovery-prefix", "ha/#"), {})
    assert "--ha-discovery" in _parser("edgeorder ingest").format_help()


@pytest.mark.parametrize("group", ["", "a/b", "g+", "g#", "x" * 65])
def test_a_shared_group_is_one_plain_topic_level(tmp_path: Path, group: str) -> None:
    """Else ``$share/GROUP/...`` is another filter than the workers' (see the README's note
    on observers and an unguessable group)."""
    base = ["--data-dir", str(tmp_path)]
    with pytest.raises(ValidationError, match="mqtt_shared_group"):
        build_settings(args(*base, "--shared-group", group), {})
    ok = build_settings(args(*base, "--shared-group", "edgeorder-5f0c.a_B"), {})
    assert ok.mqtt_shared_group == "edgeorder-5f0c.a_B"
