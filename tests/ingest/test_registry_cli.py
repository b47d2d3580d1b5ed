"""Registry functions, firmware TOML, and the CLIs (help, device add/list/show/disable)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.firmware import render_agent_toml
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.support.proc import run_cli

MAPPING = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG"))


def test_registry_mutations_are_audited_and_hashes_follow_enabled(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ingest.db")
    row, password = registry.add_device(db, "k-01", mapping=MAPPING, actor="alice")
    assert "mqtt_hash" not in row
    assert row["enabled"] is True
    assert verify_password(registry.device_hashes(db)["k-01"], password)
    with pytest.raises(registry.DeviceExistsError):
        registry.add_device(db, "k-01", mapping=MAPPING)
    with pytest.raises(registry.RegistryError):
        registry.add_device(db, "bad id!", mapping=MAPPING)
    registry.set_enabled(db, "k-01", False, actor="bob")
    assert registry.device_hashes(db) == {}
    new = registry.rotate_credentials(db, "k-01")
    registry.set_enabled(db, "k-01", True)
    assert verify_password(registry.device_hashes(db)["k-01"], new)
    assert not verify_password(registry.device_hashes(db)["k-01"], password)
    v1 = registry.get_device(db, "k-01")["config_version"]
    registry.update_mapping(db, "k-01", p.ButtonMapping())
    assert registry.get_device(db, "k-01")["config_version"] == v1 + 1
    registry.ensure_service_account(db, "ingest", "s3cret")
    assert verify_password(registry.service_account_hashes(db)["ingest"], "s3cret")
    registry.remove_device(db, "k-01")
    with pytest.raises(registry.UnknownDeviceError):
        registry.get_device(db, "k-01")
    actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id").fetchall()]
    assert actions[:2] == ["device.add", "device.disable"]
    assert "device.remove" in actions
    assert "device.rotate_credentials" in actions


def test_firmware_toml_has_the_agreed_layout() -> None:
    text = render_agent_toml(
        "kitchen-01",
        mqtt_url="mqtt://127.0.0.1:1883",
        password="pw",
        button={"pin": 17},
        outbox={"path": "/var/lib/x.db"},
    )
    assert text.startswith('device_id = "kitchen-01"\n')
    doc = tomllib.loads(text)
    assert doc["mqtt"] == {
        "url": "mqtt://127.0.0.1:1883",
        "username": "kitchen-01",
        "password": "pw",
    }
    assert doc["button"] == {"pin": 17}
    assert doc["outbox"]["path"] == "/var/lib/x.db"


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("ingest", "--mqtt-url"),
        ("ingest", "--ordercore-token"),
        ("ingest", "--shared-group"),
        ("device", "rotate-credentials"),
        ("broker-auth", "--out"),
    ],
)
def test_cli_help(command: str, needle: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert needle in result.stdout


def test_device_cli_add_writes_the_config_and_prints_the_password_once(tmp_path: Path) -> None:
    data, cfg = tmp_path / "data", tmp_path / "fw" / "k-01.toml"
    added = run_cli(
        "device",
        "--data-dir",
        str(data),
        "add",
        "k-01",
        "--sku",
        "COFFEE-1KG",
        "--quantity",
        "2",
        "--env",
        "dev",
        "--mqtt-url",
        "mqtt://pi.lan:1883",
        "--config-out",
        str(cfg),
        "--allow-unknown-sku",  # no order platform runs here
    )
    assert added.returncode == 0, added.stderr
    assert "not checked: ordercore unreachable" in added.stderr
    doc = tomllib.loads(cfg.read_text())
    assert doc["mqtt"]["url"] == "mqtt://pi.lan:1883"
    assert doc["mqtt"]["password"] in added.stdout
    assert cfg.stat().st_mode & 0o077 == 0  # holds a password: owner only
    listed = run_cli("device", "list", "--json", EDGEORDER_INGEST_DATA_DIR=str(data))
    (row,) = json.loads(listed.stdout)
    assert (row["device_id"], row["env"], row["mapping"]["single"]["quantity"]) == (
        "k-01",
        "dev",
        2,
    )
    assert doc["mqtt"]["password"] not in listed.stdout
    assert run_cli("device", "disable", "k-01", "--data-dir", str(data)).returncode == 0
    shown = run_cli("device", "show", "k-01", "--json", "--data-dir", str(data))
    assert json.loads(shown.stdout)["enabled"] is False
    again = run_cli(
        "device", "add", "k-01", "--sku", "X", "--data-dir", str(data), "--allow-unknown-sku"
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    missing = run_cli("device", "show", "nope", "--data-dir", str(data))
    assert missing.returncode == 1
    assert "unknown device" in missing.stderr


def test_ingest_refuses_bad_settings_listing_every_error(tmp_path: Path) -> None:
    result = run_cli(
        "ingest",
        "--data-dir",
        str(tmp_path),
        "--mqtt-url",
        "http://broker",
        "--http-port",
        "99999",
        EDGEORDER_INGEST_RETRY_BASE_S="-1",
    )
    assert result.returncode == 2
    for field in ("mqtt_url", "http_port", "retry_base_s"):
        assert field in result.stderr
