"""Home Assistant's discovery tree in the broker rules: ingest's account may publish and read
``homeassistant/#`` (or the configured prefix), a device never may -- in the rules, in the
Mosquitto files ``broker-auth`` writes (a real Mosquitto enforcing them), in EMQX's HTTP
authorizer, and in the embedded amqtt broker."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeorder import protocol as p
from edgeorder.demo.provision import write_acl
from edgeorder.ingest.domain.broker_access import acl_rules, authorize
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl, render_acl
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web import create_api_token
from tests.demo.test_embedded_broker import BrokerThread
from tests.ingest.support import Ingest, add_device
from tests.ingest.test_broker_hooks import AUTHZ, emqx
from tests.support.mosquitto import MosquittoServer, mosquitto_binary
from tests.support.mqtt import MqttProbe
from tests.support.proc import run_cli

CONFIG = "homeassistant/device_automation/edgeorder_dev-a/single_press/config"
FORGED = "homeassistant/device_automation/edgeorder_dev-b/single_press/config"
OWNER: list[str] = [] if os.geteuid() == 0 else ["--owner", ""]
"""As root the files go to mosquitto:mosquitto (the default); otherwise they stay ours."""


@pytest.mark.parametrize("prefix", ["homeassistant", "ha/site-1"])
def test_rules_and_mosquitto_file_agree(prefix: str) -> None:
    ours = Acl(acl_rules(["ingest"], prefix))
    mosquitto = Acl(parse_acl(render_acl(["ingest"], prefix)))
    topics = [f"{prefix}/status", f"{prefix}/sensor/edgeorder_dev-a/order_state/config"]
    for acl in (ours, mosquitto):
        for topic in topics:
            assert acl.allows("ingest", "i", topic, Access.WRITE)
            assert acl.allows("ingest", "i", topic, Access.READ)
            assert not acl.allows("dev-a", "dev-a", topic, Access.WRITE)
            assert not acl.allows("dev-a", "dev-a", topic, Access.READ)
        assert acl.allows("ingest", "i", f"{prefix}/#", Access.READ, is_filter=True)
        assert not acl.allows("dev-a", "dev-a", f"{prefix}/#", Access.READ, is_filter=True)
    assert authorize(ours, "ingest", "i", "publish", topics[1])
    assert not authorize(ours, "dev-a", "dev-a", "publish", topics[1])
    assert not authorize(ours, "dev-a", "dev-a", "subscribe", f"{prefix}/+/+/+/config")


@pytest.mark.parametrize("prefix", ["homeassistant", "ha/site-1"])
def test_an_observer_reads_and_writes_only_home_assistants_birth(prefix: str) -> None:
    ours = Acl(acl_rules(["ingest"], prefix, observers=["ha"]))
    mosquitto = Acl(parse_acl(render_acl(["ingest"], prefix, observers=["ha"])))
    device = {ch: p.device_topic("dev-a", ch) for ch in p.Channel}
    discovery = f"{prefix}/sensor/edgeorder_dev-a/order_state/config"
    for acl in (ours, mosquitto):
        for topic in [*device.values(), discovery, f"{prefix}/status"]:
            assert acl.allows("ha", "h", topic, Access.READ), topic
        for topic in [*device.values(), discovery]:
            assert not acl.allows("ha", "h", topic, Access.WRITE), topic
        assert acl.allows("ha", "h", f"{prefix}/status", Access.WRITE)
        assert acl.allows("ha", "h", f"{p.TOPIC_ROOT}/+/status", Access.READ, is_filter=True)
        assert acl.allows("ha", "h", f"{prefix}/#", Access.READ, is_filter=True)
    assert authorize(ours, "ha", "h", "subscribe", f"{p.TOPIC_ROOT}/+/events")
    assert not authorize(ours, "ha", "h", "publish", device[p.Channel.EVENTS])
    assert not authorize(ours, "ha", "h", "publish", discovery)
    assert authorize(ours, "ha", "h", "publish", f"{prefix}/status")
    shared = f"$share/ingest/{p.TOPIC_ROOT}/+/events"
    assert not authorize(ours, "ha", "h", "subscribe", shared, may_share=False)
    assert authorize(ours, "ingest", "i", "subscribe", shared)


@pytest.fixture
def auth_files(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b")}
    db = open_db(data / "ingest.db")
    registry.ensure_service_account(db, "ingest", "svc-secret")
    registry.ensure_service_account(db, "homeassistant", "ha-secret", role="observer")
    db.conn.close()
    passwords["ingest"], passwords["homeassistant"] = "svc-secret", "ha-secret"
    outer = tempfile.TemporaryDirectory(prefix="edgeorder-ha-auth-")
    out = Path(outer.name)
    out.chmod(0o755)
    result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data), *OWNER)
    assert result.returncode == 0, result.stderr
    yield out, passwords
    outer.cleanup()


class Clients:
    """Connected probes on the broker at ``port``, each as its user; closed together."""

    def __init__(self, port: int, passwords: dict[str, str]) -> None:
        self.port, self.passwords = port, passwords
        self.opened: list[MqttProbe] = []

    def connect(self, user: str) -> MqttProbe:
        client = MqttProbe(
            self.port,
            username=user,
            password=self.passwords[user],
            client_id=f"{user}-{uuid.uuid4().hex}",
        )
        self.opened.append(client)
        assert client.wait_connected()
        return client

    def close(self) -> None:
        for client in self.opened:
            client.close()


def exercise(port: int, passwords: dict[str, str]) -> None:
    """Ingest reads and writes the discovery tree; a device's publishes there are dropped."""
    clients = Clients(port, passwords)
    connect = clients.connect
    try:
        service = connect("ingest")
        service.subscribe("homeassistant/#", qos=0)
        device = connect("dev-a")
        device.publish(FORGED, b"forged", retain=True)  # dropped by the broker
        device.publish("homeassistant/status", b"online")  # a device is not Home Assistant
        service.publish(CONFIG, b"{}", qos=1)
        got = service.wait_for(lambda m: m.topic == CONFIG)
        # one connection's messages arrive in order; the device's went first, if at all
        assert [m.topic for m in service.messages] == [CONFIG]
        assert got[0].payload == b"{}"
    finally:
        clients.close()


def exercise_observer(port: int, passwords: dict[str, str]) -> None:
    """Home Assistant's read-only account sees statuses and discovery; its publishes on device
    topics and discovery configs are dropped; its birth message reaches ingest."""
    clients = Clients(port, passwords)
    connect = clients.connect
    status = p.device_topic("dev-a", p.Channel.STATUS)
    try:
        service = connect("ingest")
        service.subscribe(f"{p.TOPIC_ROOT}/+/events", qos=1)
        service.subscribe("homeassistant/#", qos=1)
        ha = connect("homeassistant")
        for channel in (p.Channel.STATUS, p.Channel.EVENTS, p.Channel.PRESENCE):
            ha.subscribe(f"{p.TOPIC_ROOT}/+/{channel.value}", qos=1)  # the sensor, the triggers
        ha.subscribe("homeassistant/#", qos=1)
        ha.publish(p.device_topic("dev-a", p.Channel.EVENTS), b"forged")  # dropped
        ha.publish(status, b"forged", retain=True)  # dropped
        ha.publish(FORGED, b"forged", retain=True)  # dropped
        ha.publish("homeassistant/status", b"online")  # its birth message: allowed
        service.wait_for(lambda m: m.topic == "homeassistant/status")
        # one connection's messages arrive in order: the forged ones went first, if at all
        assert [m.topic for m in service.messages] == ["homeassistant/status"]
        service.publish(status, b"genuine", retain=True)
        service.publish(CONFIG, b"{}")
        ha.wait_for(lambda m: m.topic == status)
        ha.wait_for(lambda m: m.topic == CONFIG)
        device = connect("dev-a")  # a press and the availability, as Home Assistant needs them
        press, presence = (
            p.device_topic("dev-a", ch) for ch in (p.Channel.EVENTS, p.Channel.PRESENCE)
        )
        device.publish(press, b"press")
        device.publish(presence, b"online", retain=True)
        ha.wait_for(lambda m: (m.topic, m.payload) == (press, b"press"))
        ha.wait_for(lambda m: (m.topic, m.payload) == (presence, b"online"))
        assert b"forged" not in {m.payload for m in ha.messages}
    finally:
        clients.close()


def test_real_mosquitto_enforces_it(
    auth_files: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed")
    out, passwords = auth_files
    assert "topic readwrite homeassistant/#" in (out / "acl").read_text()
    server = MosquittoServer(
        tmp_path / "mq", password_file=out / "passwd", acl_file=out / "acl"
    ).start()
    try:
        exercise(server.port, passwords)
        exercise_observer(server.port, passwords)
    finally:
        server.stop()


def test_embedded_broker_enforces_it(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b")}
    db = open_db(data / "ingest.db")
    try:
        registry.ensure_service_account(db, "ingest", "svc-secret")
        registry.ensure_service_account(db, "homeassistant", "ha-secret", role="observer")
        write_acl(db, data / "acl")
    finally:
        db.conn.close()
    passwords["ingest"], passwords["homeassistant"] = "svc-secret", "ha-secret"
    broker = BrokerThread(data).start()
    try:
        exercise(broker.port, passwords)
        exercise_observer(broker.port, passwords)
    finally:
        broker.stop()
    assert not broker.errors, broker.errors


async def test_emqx_authorizer_answers_the_same(ingest: Ingest, ingest_dir: Path) -> None:
    add_device(ingest_dir, "emqx-ha")
    db = open_db(ingest_dir / "ingest.db")
    try:
        registry.ensure_service_account(db, "ingest", "ingest-secret")
        registry.ensure_service_account(db, "homeassistant", "ha-secret", role="observer")
        token = create_api_token(db, "emqx")
    finally:
        db.conn.close()

    async def may(username: str, action: str, topic: str) -> Any:
        body = {"username": username, "clientid": username, "action": action, "topic": topic}
        status, doc = await emqx(ingest, AUTHZ, token, body)
        assert status == 200
        return doc["result"]

    assert await may("ingest", "publish", CONFIG) == "allow"
    assert await may("ingest", "subscribe", "homeassistant/status") == "allow"
    assert await may("emqx-ha", "publish", CONFIG) == "deny"
    assert await may("emqx-ha", "publish", "homeassistant/status") == "deny"
    assert await may("emqx-ha", "subscribe", "homeassistant/#") == "deny"
    status = p.device_topic("emqx-ha", p.Channel.STATUS)
    assert await may("homeassistant", "subscribe", f"{p.TOPIC_ROOT}/+/status") == "allow"
    assert await may("homeassistant", "subscribe", "homeassistant/#") == "allow"
    assert await may("homeassistant", "publish", "homeassistant/status") == "allow"
    assert await may("homeassistant", "publish", status) == "deny"
    assert await may("homeassistant", "publish", CONFIG) == "deny"
    # never a member of ingest's shared group: it would take a share of the events
    shared = f"$share/edgeorder/{p.TOPIC_ROOT}/+/events"
    assert await may("homeassistant", "subscribe", shared) == "deny"
    assert await may("ingest", "subscribe", shared) == "allow"
