"""``deploy/mosquitto/edgeorder.conf`` in ``conf.d`` under Debian's stock ``mosquitto.conf``:
it loads, Mosquitto runs as user ``mosquitto`` and reads what ``edgeorder tls`` and
``edgeorder broker-auth`` wrote, devices get in over TLS only with their own credentials, a
device's password cannot take or wipe ingest's session, and ``broker-auth --reload`` applies
an add, a rotation and a disable."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edgeorder import protocol as p
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.deploy.support import StockMosquitto, TlsClient, shared_tmpdir
from tests.ingest.support import add_device
from tests.support.mosquitto import mosquitto_binary
from tests.support.net import free_port
from tests.support.proc import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="Mosquitto drops to user mosquitto from root"),
]


@dataclass
class Server:
    broker: StockMosquitto
    data: Path
    passwords: dict[str, str]
    clients: list[TlsClient] = field(default_factory=list)  # closed at the end of the test

    @property
    def ca(self) -> Path:
        return self.broker.etc / "edgeorder" / "tls" / "ca.crt"

    def device(
        self,
        user: str,
        password: str | None = None,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> TlsClient:
        pw = self.passwords[user] if password is None else password
        return self.client(
            "127.0.0.1",
            self.broker.tls_port,
            username=user,
            password=pw,
            ca=self.ca,
            client_id=client_id,
            clean_session=clean_session,
        )

    def ingest(self) -> TlsClient:
        return self.client(
            "127.0.0.1",
            self.broker.local_port,
            username="ingest",
            password=self.passwords["ingest"],
            client_id="edgeorder-ingest",
            clean_session=False,
        )

    def client(self, *args: Any, **kwargs: Any) -> TlsClient:
        self.clients.append(TlsClient(*args, **kwargs))
        return self.clients[-1]

    def broker_auth(self, *extra: str) -> None:
        out = self.broker.etc / "edgeorder"
        result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(self.data), *extra)
        assert result.returncode == 0, result.stderr

    def reload(self) -> None:
        pid_file = self.broker.root / "run/mosquitto/mosquitto.pid"
        self.broker_auth("--reload", "--pid-file", str(pid_file))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = shared_tmpdir("edgeorder-mosquitto-")
    broker = StockMosquitto(root, tls_port=free_port(), local_port=free_port()).install()
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b")}
    secret = root / "ingest.pass"
    running = Server(broker, data, passwords)
    try:
        tls = run_cli("tls", "--out", str(broker.etc / "edgeorder/tls"), "--host", "127.0.0.1")
        assert tls.returncode == 0, tls.stderr
        running.broker_auth("--service", f"ingest={secret}", "--create-password")
        passwords["ingest"] = secret.read_text().strip()
        broker.start()
        yield running
    finally:
        for client in running.clients:  # their loop threads would keep reconnecting
            client.close()
        broker.stop()
        subprocess.run(["rm", "-rf", str(root)], check=True)


def events(device: str) -> str:
    return p.device_topic(device, p.Channel.EVENTS)


def test_loads_under_the_stock_config_and_runs_as_mosquitto(server: Server) -> None:
    assert server.broker.proc is not None
    status = Path(f"/proc/{server.broker.proc.pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert pwd.getpwuid(int(uid)).pw_name == "mosquitto"
    ingest = server.ingest()
    assert ingest.connected()  # read the password file and the ACL as mosquitto
    ingest.subscribe(f"{p.TOPIC_ROOT}/+/events")
    device = server.device("dev-a")  # TLS, verified against the project's CA
    assert device.connected()
    device.publish(events("dev-b"), "forged")
    device.publish(events("dev-a"), "own")
    ingest.wait_for(lambda m: m.payload == b"own")
    assert [m.payload for m in ingest.messages] == [b"own"]
    assert not server.device("dev-a", "wrong").connected()
    plain = server.client(
        "127.0.0.1",
        server.broker.tls_port + 0,
        username="dev-a",
        password=server.passwords["dev-a"],
        ca=None,
    )
    with pytest.raises(TimeoutError):  # no TLS, no CONNACK at all
        plain.connected(timeout=3)


def test_a_device_password_neither_kicks_nor_wipes_ingests_session(server: Server) -> None:
    ingest = server.ingest()
    assert ingest.connected()
    ingest.subscribe(f"{p.TOPIC_ROOT}/+/events")
    intruder = server.device("dev-b", client_id="edgeorder-ingest")
    assert intruder.connected()  # as client "dev-b": use_username_as_clientid
    intruder.publish(events("dev-b"), "marker")
    ingest.wait_for(lambda m: m.payload == b"marker")
    assert ingest.disconnects == 0
    ingest.close()  # away: its persistent session queues QoS 1 events
    device = server.device("dev-a")
    assert device.connected()
    for n in range(5):
        device.publish(events("dev-a"), f"queued {n}")
    wiper = server.device("dev-b", client_id="edgeorder-ingest", clean_session=True)
    assert wiper.connected()
    wiper.close()
    back = server.ingest()
    assert back.connected()
    got = back.wait_for(lambda m: m.payload.startswith(b"queued"), count=5)
    assert sorted(m.payload for m in got) == [f"queued {n}".encode() for n in range(5)]


def test_broker_auth_reload_applies_an_add_a_rotation_and_a_disable(server: Server) -> None:
    server.passwords["dev-c"] = add_device(server.data, "dev-c")
    assert not server.device("dev-c").connected()  # the broker does not know it yet
    db = open_db(server.data / "ingest.db")
    try:
        old_a = server.passwords["dev-a"]
        server.passwords["dev-a"] = registry.rotate_credentials(db, "dev-a")
        registry.set_enabled(db, "dev-b", False)
    finally:
        db.conn.close()
    disabled = server.device("dev-b")
    assert disabled.connected()  # still the old files
    server.reload()
    assert server.device("dev-c").connected()
    assert server.device("dev-a").connected()
    assert not server.device("dev-a", old_a).connected()
    assert not server.device("dev-b").connected()
    disabled.wait_disconnected()  # Mosquitto re-checks connected clients on reload


def test_a_will_cannot_forge_another_devices_retained_status(server: Server) -> None:
    ingest = server.ingest()
    assert ingest.connected()
    ingest.publish(p.device_topic("dev-b", p.Channel.STATUS), "genuine", retain=True)
    forger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev-a")
    forger.username_pw_set("dev-a", server.passwords["dev-a"])
    forger.tls_set(ca_certs=str(server.ca))
    forger.will_set(p.device_topic("dev-b", p.Channel.STATUS), "forged", qos=1, retain=True)
    forger.connect("127.0.0.1", server.broker.tls_port)
    forger.loop(timeout=2)  # the CONNACK, whatever it says
    sock = forger.socket()
    assert sock is not None
    sock.close()  # gone without DISCONNECT: Mosquitto would publish the will now
    victim = server.device("dev-b")
    assert victim.connected()
    victim.subscribe(p.device_topic("dev-b", p.Channel.STATUS))
    (status,) = victim.wait_for(lambda m: m.retain)
    assert status.payload == b"genuine"
