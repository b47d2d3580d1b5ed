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


@pytest.fixture
def auth_files(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b")}
    db = open_db(data / "ingest.db")
    registry.ensure_service_account(db, "ingest", "svc-secret")
    db.conn.close()
    passwords["ingest"] = "svc-secret"
    outer = tempfile.TemporaryDirectory(prefix="edgeorder-ha-auth-")
    out = Path(outer.name)
    out.chmod(0o755)
    result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data), *OWNER)
    assert result.returncode == 0, result.stderr
    yield out, passwords
    outer.cleanup()


def exercise(port: int, passwords: dict[str, str]) -> None:
    """Ingest reads and writes the discovery tree; a device's publishes there are dropped."""
    clients: list[MqttProbe] = []

    def connect(user: str) -> MqttProbe:
        client = MqttProbe(
            port, username=user, password=passwords[user], client_id=f"{user}-{uuid.uuid4().hex}"
        )
        clients.append(client)
        assert client.wait_connected()
        return client

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
        for client in clients:
            client.close()


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
    finally:
        server.stop()


def test_embedded_broker_enforces_it(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b")}
    db = open_db(data / "ingest.db")
    try:
        registry.ensure_service_account(db, "ingest", "svc-secret")
        write_acl(db, data / "acl")
    finally:
        db.conn.close()
    passwords["ingest"] = "svc-secret"
    broker = BrokerThread(data).start()
    try:
        exercise(broker.port, passwords)
    finally:
        broker.stop()
    assert not broker.errors, broker.errors


async def test_emqx_authorizer_answers_the_same(ingest: Ingest, ingest_dir: Path) -> None:
    add_device(ingest_dir, "emqx-ha")
    db = open_db(ingest_dir / "ingest.db")
    try:
        registry.ensure_service_account(db, "ingest", "ingest-secret")
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
