"""The demo's parts without the whole stack: secrets, provisioning, the fleet, the press route."""

from __future__ import annotations

import json
import socket
import stat
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder.agent.config import load_config
from edgeorder.demo.broker import PortInUseError
from edgeorder.demo.cli import DemoOptions, check_ports
from edgeorder.demo.fleet import DemoFleet, UnknownSimulatedDeviceError
from edgeorder.demo.press import install_press_route
from edgeorder.demo.provision import DemoPaths, demo_device_ids, provision
from edgeorder.demo.secrets import DemoSecrets, SecretsFileError, load_secrets, save_secrets
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import list_devices
from edgeorder.ingest.web.auth import verify_api_token
from tests.support.net import free_port

URL = "mqtt://127.0.0.1:1"


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_are_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_secrets(path, env={})
    assert all(
        [
            first.admin_password,
            first.ordercore_token,
            first.ingest_mqtt_password,
            first.webhook_secret,
        ]
    )
    save_secrets(path, first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secrets(path, env={}) == first
    assert load_secrets(tmp_path / "other.json", env={}) != first


def test_env_overrides_admin_password_and_ordercore_token(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    save_secrets(path, load_secrets(path, env={}))
    env = {"EDGEORDER_ADMIN_PASSWORD": "pw-from-env", "EDGEORDER_ORDERCORE_TOKEN": "tok-env"}
    got = load_secrets(path, env=env)
    assert (got.admin_password, got.ordercore_token) == ("pw-from-env", "tok-env")
    assert got.ingest_mqtt_password == load_secrets(path, env={}).ingest_mqtt_password


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"admin_password": 5}'])
def test_a_damaged_secrets_file_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(text)
    with pytest.raises(SecretsFileError, match=r"secrets\.json"):
        load_secrets(path, env={})


# -- provisioning -----------------------------------------------------------------------------


def toml_of(paths: DemoPaths, device_id: str) -> dict[str, object]:
    return tomllib.loads(paths.firmware_toml(device_id).read_text())


def password_of(paths: DemoPaths, device_id: str) -> str:
    mqtt = toml_of(paths, device_id)["mqtt"]
    assert isinstance(mqtt, dict)
    return str(mqtt["password"])


def registry_hash(paths: DemoPaths, device_id: str) -> str:
    db = open_db(paths.ingest_db)
    try:
        row = db.execute(
            "SELECT mqtt_hash FROM devices WHERE device_id = ?", [device_id]
        ).fetchone()
        return str(row[0])
    finally:
        db.conn.close()


def test_provision_registers_devices_once_and_reuses_everything(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "d")
    first = provision(paths, load_secrets(paths.secrets, env={}), device_count=2, mqtt_url=URL)
    assert first.created == ["demo-01", "demo-02"]
    assert list(first.configs) == demo_device_ids(2)
    passwords = {d: password_of(paths, d) for d in first.configs}
    for device_id, password in passwords.items():
        assert verify_password(registry_hash(paths, device_id), password)
        config = load_config(paths.firmware_toml(device_id))  # the agent's own loader
        assert config.mqtt.username == device_id
        assert config.outbox.path == paths.outbox(device_id).resolve()
    save_secrets(paths.secrets, first.secrets)

    again = provision(paths, load_secrets(paths.secrets, env={}), device_count=3, mqtt_url=URL)
    assert again.created == ["demo-03"]
    assert again.secrets.api_token == first.secrets.api_token
    assert {d: password_of(paths, d) for d in first.configs} == passwords
    db = open_db(paths.ingest_db)
    try:
        devices = list_devices(db)
        assert verify_api_token(db.conn, again.secrets.api_token) == "edgeorder-demo-cli"
    finally:
        db.conn.close()
    assert [d["device_id"] for d in devices] == ["demo-01", "demo-02", "demo-03"]
    assert all(d["env"] == "dev" and d["simulated"] for d in devices)
    assert devices[0]["mapping"]["single"] == {
        "type": "reorder",
        "sku": "COFFEE-1KG",
        "quantity": 1,
    }


def test_a_lost_firmware_file_gets_new_credentials_and_a_new_port_keeps_them(
    tmp_path: Path,
) -> None:
    paths = DemoPaths(tmp_path / "d")
    secrets = load_secrets(paths.secrets, env={})
    provision(paths, secrets, device_count=1, mqtt_url=URL)
    old = password_of(paths, "demo-01")

    provision(paths, secrets, device_count=1, mqtt_url="mqtt://127.0.0.1:2")
    assert password_of(paths, "demo-01") == old
    mqtt = toml_of(paths, "demo-01")["mqtt"]
    assert isinstance(mqtt, dict)
    assert mqtt["url"] == "mqtt://127.0.0.1:2"

    paths.firmware_toml("demo-01").unlink()
    provision(paths, secrets, device_count=1, mqtt_url=URL)
    new = password_of(paths, "demo-01")
    assert new != old
    assert verify_password(registry_hash(paths, "demo-01"), new)
    assert not verify_password(registry_hash(paths, "demo-01"), old)


def test_the_acl_lets_a_device_write_only_its_own_topics(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "d")
    provision(paths, load_secrets(paths.secrets, env={}), device_count=2, mqtt_url=URL)
    acl = Acl(parse_acl(paths.acl_file.read_text()))
    root = "edgeorder/v1/devices"
    assert acl.allows("demo-01", "c", f"{root}/demo-01/events", Access.WRITE)
    assert not acl.allows("demo-01", "c", f"{root}/demo-02/events", Access.WRITE)
    assert not acl.allows("demo-01", "c", f"{root}/demo-02/status", Access.READ)
    assert acl.allows("ingest", "c", f"{root}/+/events", Access.READ, is_filter=True)
    assert not acl.allows(None, "c", f"{root}/demo-01/events", Access.WRITE)


# -- the fleet and the press route (agents offline: the broker port is closed) ---------------


LedLog = list[tuple[str, str, str]]


@pytest.fixture
def leds() -> LedLog:
    return []


@pytest.fixture
async def fleet(tmp_path: Path, leds: LedLog) -> AsyncIterator[DemoFleet]:
    paths = DemoPaths(tmp_path / "d")
    ready = provision(
        paths,
        load_secrets(paths.secrets, env={}),
        device_count=2,
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
    )
    running = DemoFleet.from_files(
        list(ready.configs.values()), on_led=lambda *change: leds.append(change)
    )
    await running.start()
    yield running
    await running.stop()


async def test_a_press_is_stored_as_an_event_even_while_offline(
    fleet: DemoFleet, leds: LedLog
) -> None:
    assert fleet.simulated_devices() == {"demo-01", "demo-02"}
    event = await fleet.press_and_wait("demo-02", "double")
    assert event is not None
    assert (event.device_id, event.click) == ("demo-02", "double")
    assert ("demo-02", "press_ack", "pressed") in leds
    with pytest.raises(UnknownSimulatedDeviceError, match="demo-01, demo-02"):
        fleet.press("demo-99", "single")
    with pytest.raises(ValueError, match="single, double, long"):
        fleet.press("demo-01", "triple")


async def test_the_press_route(fleet: DemoFleet) -> None:
    app = web.Application()
    install_press_route(app, fleet)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/api/demo/devices/demo-01/press", json={"click": "long"})
        assert resp.status == 202
        body = await resp.json()
        assert body["click"] == "long"
        assert len(body["event_id"]) == 26

        resp = await client.post("/api/demo/devices/nope/press", json={"click": "single"})
        assert resp.status == 404
        assert (await resp.json())["devices"] == ["demo-01", "demo-02"]
        resp = await client.post("/api/demo/devices/demo-01/press", json={"click": "x"})
        assert resp.status == 400
        resp = await client.post(
            "/api/demo/devices/demo-01/press",
            data=b"{oops",
            headers={"Content-Type": "application/json"},
        )
        assert resp.status == 400
        assert "JSON" in json.dumps(await resp.json())


def test_secrets_dataclass_round_trips(tmp_path: Path) -> None:
    value = DemoSecrets("a", "b", "c", "d", "e")
    save_secrets(tmp_path / "s.json", value)
    assert load_secrets(tmp_path / "s.json", env={}) == value


# -- ports are checked up front ---------------------------------------------------------------


def options(tmp_path: Path, mqtt: int, http: int, core: int) -> DemoOptions:
    return DemoOptions(tmp_path, "127.0.0.1", mqtt, http, core, devices=1)


def test_a_taken_port_names_the_option_to_change(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError) as taken:
            check_ports(options(tmp_path, free_port(), free_port(), port))
    assert taken.value.strerror == (
        f"order core: port {port} on 127.0.0.1 is already in use; "
        "choose another with --ordercore-port PORT"
    )


def test_one_port_for_two_listeners_is_refused(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(PortInUseError, match="--http-port"):
        check_ports(options(tmp_path, port, port, free_port()))
