"""Provisioning gives devices the broker as *they* reach it: the device-facing URL and CA
(ingest's settings) go into every firmware config, from ``edgeorder device add`` and from the
dashboard, and the dashboard says when Mosquitto's files are behind the registry."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder.agent.config import load_config
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.deploy.support import shared_tmpdir
from tests.support.proc import cli_command, cli_env, run_cli
from tests.web.conftest import WebEnv, make_app, make_settings
from tests.web.support import RecordingPublisher, RecordingSimulator

DEVICE_URL = "mqtts://192.0.2.10:8883"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
OWNER: list[str] = [] if os.geteuid() == 0 else ["--owner", ""]


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "tls" / "ca.crt"
    path.parent.mkdir()
    path.write_text(CA_PEM)
    return path


def add(data: Path, device: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = ["device", "add", device, "--sku", "COFFEE-1KG", "--data-dir", str(data)]
    argv += ["--allow-unknown-sku", *args]  # no order platform runs in these tests
    return subprocess.run(
        cli_command(*argv), env=cli_env(**env), capture_output=True, text=True, timeout=60
    )


# -- the CLI ----------------------------------------------------------------------------------


def test_device_add_writes_the_device_facing_url_and_the_ca_beside_the_config(
    tmp_path: Path, ca_file: Path
) -> None:
    out = tmp_path / "out" / "kitchen-01.toml"
    result = add(
        tmp_path / "ingest",
        "kitchen-01",
        "--mqtt-url",
        DEVICE_URL,
        "--ca-file",
        str(ca_file),
        "--config-out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stderr
    doc = tomllib.loads(out.read_text())
    assert doc["mqtt"]["url"] == DEVICE_URL
    assert doc["mqtt"]["ca_file"] == "ca.crt"
    assert (out.parent / "ca.crt").read_text() == CA_PEM
    config = load_config(out)  # what the agent on the Pi reads
    assert config.mqtt.tls
    assert config.mqtt.ca_file == out.parent.resolve() / "ca.crt"


def test_device_add_takes_the_url_and_ca_from_ingests_environment(
    tmp_path: Path, ca_file: Path
) -> None:
    result = add(
        tmp_path / "ingest",
        "kitchen-02",
        EDGEORDER_INGEST_DEVICE_MQTT_URL=DEVICE_URL,
        EDGEORDER_INGEST_DEVICE_CA_FILE=str(ca_file),
        EDGEORDER_INGEST_MQTT_URL="mqtt://127.0.0.1:1883",
    )
    assert result.returncode == 0, result.stderr
    doc = tomllib.loads(result.stdout.split("--reload'\n", 1)[1])
    assert (doc["mqtt"]["url"], doc["mqtt"]["ca_file"]) == (DEVICE_URL, "ca.crt")


def test_a_loopback_url_is_written_with_a_warning(tmp_path: Path) -> None:
    result = add(
        tmp_path / "ingest", "kitchen-03", EDGEORDER_INGEST_MQTT_URL="mqtt://127.0.0.1:1883"
    )
    assert result.returncode == 0, result.stderr
    assert "only a device on this machine reaches" in result.stderr


def test_an_unreadable_ca_registers_nothing(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    result = add(data, "kitchen-04", "--mqtt-url", DEVICE_URL, "--ca-file", str(tmp_path / "no"))
    assert result.returncode == 1
    assert "cannot read --ca-file" in result.stderr
    db = open_db(data / "ingest.db")
    try:
        assert registry.list_devices(db) == []  # no password printed for a device left behind
    finally:
        db.conn.close()


@pytest.mark.parametrize("url", ["http://x:1883", "mqtt://", "x"])
def test_a_bad_url_is_refused(tmp_path: Path, url: str) -> None:
    result = add(tmp_path / "ingest", "kitchen-05", "--mqtt-url", url)
    assert result.returncode == 2
    assert "--mqtt-url" in result.stderr


def test_rotate_credentials_writes_a_new_config(tmp_path: Path, ca_file: Path) -> None:
    data = tmp_path / "ingest"
    assert add(data, "kitchen-06").returncode == 0
    out = tmp_path / "kitchen-06.toml"
    result = run_cli(
        "device",
        "rotate-credentials",
        "kitchen-06",
        "--data-dir",
        str(data),
        "--mqtt-url",
        DEVICE_URL,
        "--ca-file",
        str(ca_file),
        "--config-out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    password = tomllib.loads(out.read_text())["mqtt"]["password"]
    db = open_db(data / "ingest.db")
    try:
        assert verify_password(registry.device_hashes(db)["kitchen-06"], password)
    finally:
        db.conn.close()
    assert (tmp_path / "ca.crt").read_text() == CA_PEM


@pytest.mark.skipif(os.geteuid() != 0, reason="seteuid needs root")
def test_as_root_the_registry_stays_the_data_directorys_owners() -> None:
    data = shared_tmpdir("edgeorder-data-")
    try:
        nobody = pwd.getpwnam("nobody")
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
        assert add(data, "kitchen-07").returncode == 0
        owners = {name: (data / name).stat().st_uid for name in os.listdir(data)}
        assert owners, "the registry was created"
        assert set(owners.values()) == {nobody.pw_uid}, owners
    finally:
        subprocess.run(["rm", "-rf", str(data)], check=True)


# -- the dashboard ------------------------------------------------------------------------------


async def start(tmp_path: Path, **settings: object) -> WebEnv:
    values = make_settings(tmp_path, **settings)
    bus = Bus()
    simulator, publisher = RecordingSimulator(values.db_path, bus), RecordingPublisher()
    app = make_app(values, bus, simulator, publisher)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    env = WebEnv(app, client, values, bus, simulator, publisher)
    await env.login()
    return env


@pytest.fixture
async def dashboard(tmp_path: Path, ca_file: Path) -> AsyncIterator[WebEnv]:
    env = await start(tmp_path, device_mqtt_url=DEVICE_URL, device_ca_file=ca_file)
    yield env
    await env.client.close()


async def provision(env: WebEnv, device: str) -> dict[str, object]:
    resp = await env.client.post(
        "/provision",
        data={
            "csrf_token": env.csrf,
            "device_id": device,
            "single_type": "reorder",
            "single_sku": "COFFEE-1KG",
            "double_type": "none",
            "long_type": "cancel_last",
        },
        headers={"Accept": "application/json"},
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, object] = await resp.json()
    return body


async def test_the_dashboard_writes_the_device_facing_url_and_offers_the_ca(
    dashboard: WebEnv,
) -> None:
    page = await (await dashboard.client.get("/provision")).text()
    assert f'<code id="device-mqtt-url">{DEVICE_URL}</code>' in page
    assert 'id="ca-download" download="ca.crt"' in page
    body = await provision(dashboard, "hall-01")
    doc = tomllib.loads(str(body["firmware_config"]))
    assert (doc["mqtt"]["url"], doc["mqtt"]["ca_file"]) == (DEVICE_URL, "ca.crt")
    assert body["ca_certificate"] == CA_PEM
    html = await (
        await dashboard.post(
            "/provision",
            device_id="hall-02",
            single_type="none",
            double_type="none",
            long_type="none",
        )
    ).text()
    assert 'id="ca-download"' in html
    assert DEVICE_URL in html


def pending(html: str) -> int | None:
    found = re.search(r"does not know about (\d+) registry change", html)
    return int(found.group(1)) if found else None


async def test_the_dashboard_says_when_the_broker_is_behind(dashboard: WebEnv) -> None:
    assert pending(await (await dashboard.client.get("/provision")).text()) is None
    await provision(dashboard, "hall-01")
    await provision(dashboard, "hall-02")
    page = await (await dashboard.client.get("/provision")).text()
    assert pending(page) == 2
    assert "broker-auth --data-dir" in page
    result = run_cli(
        "broker-auth",
        "--out",
        str(dashboard.settings.data_dir.parent / "auth"),
        "--data-dir",
        str(dashboard.settings.data_dir),
        *OWNER,
    )
    assert result.returncode == 0, result.stderr
    assert pending(await (await dashboard.client.get("/provision")).text()) is None
    rotated = await dashboard.post("/devices/hall-01/rotate")
    assert "broker-auth --reload" in await rotated.text()
    await dashboard.post("/devices/hall-02/enabled", enabled="0")
    assert pending(await (await dashboard.client.get("/provision")).text()) == 2
    assert pending(await (await dashboard.client.get("/devices/hall-02")).text()) == 2


async def test_no_reminder_when_the_broker_reads_the_registry(tmp_path: Path) -> None:
    env = await start(tmp_path, broker_reads_registry=True)
    try:
        await provision(env, "demo-09")
        page = await (await env.client.get("/provision")).text()
        assert pending(page) is None
        assert "Only a device on this machine reaches" in page  # the default: ingest's own URL
    finally:
        await env.client.close()


async def test_a_ca_that_cannot_be_read_stops_provisioning_before_the_device_exists(
    tmp_path: Path,
) -> None:
    env = await start(tmp_path, device_mqtt_url=DEVICE_URL, device_ca_file=tmp_path / "gone.crt")
    try:
        page = await (await env.client.get("/provision")).text()
        assert "cannot read" in page  # the Provisioning page says so before anyone tries
        resp = await env.post(
            "/provision",
            device_id="hall-09",
            single_type="none",
            double_type="none",
            long_type="none",
        )
        assert resp.status == 503
        assert "the broker&#x27;s CA" in await resp.text()
        db = open_db(env.settings.db_path)
        try:
            assert registry.list_devices(db) == []
        finally:
            db.conn.close()
    finally:
        await env.client.close()
