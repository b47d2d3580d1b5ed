"""``edgeorder demo`` as a user runs it: a subprocess on free ports with a fresh data dir."""

from __future__ import annotations

import json
import subprocess
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from edgeorder import protocol as p
from edgeorder.demo.provision import DEMO_MAPPING
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.support.mqtt import MqttProbe, Received
from tests.support.net import free_port
from tests.support.proc import run_cli, spawn_cli

pytestmark = pytest.mark.integration


OBSERVER = "observer"
"""A service account of the test's own: with client ids bound to usernames (as Mosquitto's
``use_username_as_clientid``), watching with ingest's account would take over ingest's session."""
OUTSIDER = "outsider"
"""A registered device no agent runs for: connecting as a simulated device would take over the
demo agent's session (and the two would kick each other)."""


class Demo:
    """A running ``edgeorder demo``; ``urls`` parsed from the ready line it prints."""

    def __init__(self, data_dir: Path, mqtt_port: int, http_port: int, core_port: int) -> None:
        self.data_dir, self.mqtt_port = data_dir, mqtt_port
        self.http_port, self.core_port = http_port, core_port
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.probes: list[MqttProbe] = []  # closed by close()
        self.passwords = self._seed()

    def _seed(self) -> dict[str, str]:
        """The observer account and the outsider device, in the registry the demo re-uses."""
        db = open_db(self.data_dir / "ingest" / "ingest.db")
        try:
            observer = uuid.uuid4().hex
            registry.ensure_service_account(db, OBSERVER, observer)
            _, outsider = registry.add_device(db, OUTSIDER, mapping=DEMO_MAPPING, env="dev")
        finally:
            db.conn.close()
        return {OBSERVER: observer, OUTSIDER: outsider}

    def probe(self, username: str, **kwargs: Any) -> MqttProbe:
        """A connected client as the seeded ``observer`` or ``outsider``."""
        probe = MqttProbe(
            self.mqtt_port, username=username, password=self.passwords[username], **kwargs
        )
        self.probes.append(probe)
        return probe

    def start(self) -> Demo:
        self.proc = spawn_cli(
            "demo",
            "--data-dir",
            str(self.data_dir),
            "--mqtt-port",
            str(self.mqtt_port),
            "--http-port",
            str(self.http_port),
            "--ordercore-port",
            str(self.core_port),
            "--devices",
            "2",
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # blocks on the demo's own output, no polling
            self.output.append(line)
            if "edgeorder demo is ready" in line:
                return self
        raise AssertionError("demo exited before ready:\n" + "".join(self.output[-40:]))

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        rest, _ = self.proc.communicate(timeout=60)
        self.output.append(rest)
        return self.proc.returncode

    def close(self) -> None:
        """The end of a test: the probes' loop threads (they would keep reconnecting to a
        broker that is gone) and the demo if it still runs."""
        for probe in self.probes:
            probe.close()
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    def secrets(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.data_dir / "secrets.json").read_text())
        return data

    def device_credentials(self, device_id: str) -> tuple[str, str]:
        cfg = tomllib.loads((self.data_dir / "firmware-config" / f"{device_id}.toml").read_text())
        return cfg["mqtt"]["username"], cfg["mqtt"]["password"]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path / "data", free_port(), free_port(), free_port()).start()
    yield running
    running.close()


def event_for(device_id: str, seq: int = 1) -> p.Event:
    return p.Event(
        event_id=str(ULID()),
        device_id=device_id,
        seq=seq,
        kind=p.EventKind.PRESS,
        click=p.Click.SINGLE,
        ts=p.utcnow(),
        fw="test",
    )


def get_json(url: str, token: str) -> object:
    import urllib.request

    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def test_a_device_press_becomes_one_order_and_survives_a_restart(demo: Demo) -> None:
    user, password = demo.device_credentials("demo-01")
    # A device of the registry that no simulated agent runs for (client ids are bound to
    # usernames: a second client as demo-01 would take over the demo agent's session).
    client = demo.probe(OUTSIDER)
    assert client.wait_connected()
    status_topic = p.device_topic(OUTSIDER, p.Channel.STATUS)
    client.subscribe(status_topic)
    event = event_for(OUTSIDER)
    client.publish(p.device_topic(OUTSIDER, p.Channel.EVENTS), p.encode(event))

    def state_of(msg_state: str) -> Callable[[Received], bool]:
        return lambda m: (
            m.topic == status_topic
            and json.loads(m.payload).get("event_id") == event.event_id
            and json.loads(m.payload)["state"] == msg_state
        )

    client.wait_for(state_of("accepted"), timeout=30)
    ordered = client.wait_for(state_of("ordered"), timeout=30)[0]
    order_id = json.loads(ordered.payload)["order_id"]
    client.close()

    token = demo.secrets()["ordercore_token"]
    core = f"http://127.0.0.1:{demo.core_port}/api/order/received"
    order = get_json(f"{core}/{order_id}", token)
    assert isinstance(order, dict)
    assert order["Device"]["Id"] == OUTSIDER
    assert demo.stop() == 0
    # amqtt 0.12 printed 'RuntimeError: dictionary changed size during iteration' at start
    assert "Traceback" not in "".join(demo.output), "".join(demo.output)

    demo.start()  # same data dir
    page = get_json(f"{core}?device={OUTSIDER}", token)
    assert isinstance(page, dict)
    assert [o["Id"] for o in page["Data"]] == [order["Id"]]
    assert demo.device_credentials("demo-01") == (user, password)


def test_broker_refuses_a_wrong_password_and_a_foreign_topic(demo: Demo) -> None:
    user, password = demo.device_credentials("demo-01")
    wrong = MqttProbe(demo.mqtt_port, username=user, password=password + "x")
    assert not wrong.wait_connected()
    wrong.close()
    anonymous = MqttProbe(demo.mqtt_port)
    assert not anonymous.wait_connected()
    anonymous.close()

    # Watch every event topic with a service account of the test's own.
    watcher = demo.probe(OBSERVER)
    assert watcher.wait_connected()
    watcher.subscribe("edgeorder/v1/devices/+/events")
    device = demo.probe(OUTSIDER)
    assert device.wait_connected()
    forged = event_for("demo-02")
    device.publish(p.device_topic("demo-02", p.Channel.EVENTS), p.encode(forged))
    marker = event_for(OUTSIDER)
    device.publish(p.device_topic(OUTSIDER, p.Channel.EVENTS), p.encode(marker))
    # Same connection, in order: once the marker arrived, the forged event would have too.
    watcher.wait_for(lambda m: marker.event_id.encode() in m.payload)
    assert not [m for m in watcher.messages if forged.event_id.encode() in m.payload]
    device.close()
    watcher.close()


def test_demo_says_clearly_when_its_mqtt_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "demo",
            "--data-dir",
            str(tmp_path / "d"),
            "--mqtt-port",
            str(port),
            "--http-port",
            str(free_port()),
            "--ordercore-port",
            str(free_port()),
        )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr + result.stdout
    assert "--mqtt-port" in result.stderr + result.stdout
