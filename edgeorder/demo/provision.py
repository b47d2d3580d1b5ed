"""Set up (or re-use) the demo's data dir: the registry's devices, their firmware-config TOML,
ingest's MQTT service account, the dashboard API token and the broker's ACL.

Blocking (SQLite, argon2/PBKDF2 hashing): the demo runs ``provision`` in a worker thread before
anything listens. A restart re-uses everything: a device's password is generated once, and only
re-issued when its firmware-config file no longer holds a password the registry accepts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import sqlite_utils
import structlog

from edgeorder import protocol as p
from edgeorder.demo.secrets import DemoSecrets
from edgeorder.ingest.cli.broker_auth import render_acl
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.firmware import render_agent_toml, write_agent_toml
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.registry import (
    UnknownDeviceError,
    account_roles,
    add_device,
    ensure_service_account,
    get_device,
    rotate_credentials,
    service_account_hashes,
)
from edgeorder.ingest.web.auth import create_api_token, verify_api_token

__all__ = [
    "DEMO_MAPPING",
    "INGEST_ACCOUNT",
    "DemoPaths",
    "Provisioned",
    "demo_device_ids",
    "provision",
]

log = structlog.get_logger(__name__)

INGEST_ACCOUNT = "ingest"
API_TOKEN_NAME = "edgeorder-demo-cli"
DEMO_MAPPING = p.ButtonMapping(
    single=p.ReorderAction(sku="COFFEE-1KG"),
    double=p.ReorderAction(sku="TEA-250G"),
    long=p.CancelLastAction(),
)
"""single -> reorder coffee, double -> reorder tea, long -> cancel the last order (seed SKUs)."""


def demo_device_ids(count: int) -> list[str]:
    """``demo-01``, ``demo-02``, ... (two digits up to 99, then as many as needed)."""
    return [f"demo-{n:02d}" for n in range(1, count + 1)]


@dataclass(frozen=True)
class DemoPaths:
    """Where everything lives under the demo's data dir ``root``."""

    root: Path

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def ingest_dir(self) -> Path:
        return self.root / "ingest"

    @property
    def ingest_db(self) -> Path:
        return self.ingest_dir / "ingest.db"  # == ingest.settings.Settings(data_dir=...).db_path

    @property
    def ordercore_dir(self) -> Path:
        return self.root / "ordercore"

    @property
    def firmware_dir(self) -> Path:
        return self.root / "firmware-config"

    @property
    def acl_file(self) -> Path:
        return self.root / "broker" / "acl"

    def firmware_toml(self, device_id: str) -> Path:
        return self.firmware_dir / f"{device_id}.toml"

    def outbox(self, device_id: str) -> Path:
        return self.root / "agents" / device_id / "outbox.db"


@dataclass(frozen=True)
class Provisioned:
    """The outcome: secrets to save (with the API token) and each device's config file."""

    secrets: DemoSecrets
    configs: dict[str, Path]
    created: list[str]


def provision(
    paths: DemoPaths, secrets: DemoSecrets, *, device_count: int, mqtt_url: str
) -> Provisioned:
    """Make the data dir ready for a demo with ``device_count`` devices on ``mqtt_url``."""
    paths.root.mkdir(parents=True, exist_ok=True)
    db = open_db(paths.ingest_db)
    try:
        _ensure_ingest_account(db, secrets.ingest_mqtt_password)
        configs: dict[str, Path] = {}
        created: list[str] = []
        for device_id in demo_device_ids(device_count):
            if _ensure_device(db, paths, device_id, mqtt_url):
                created.append(device_id)
            configs[device_id] = paths.firmware_toml(device_id)
        token = secrets.api_token
        if not token or verify_api_token(db.conn, token) is None:
            token = create_api_token(db.conn, API_TOKEN_NAME)
        write_acl(db, paths.acl_file)
    finally:
        db.conn.close()
    return Provisioned(replace(secrets, api_token=token), configs, created)


def _ensure_ingest_account(db: sqlite_utils.Database, password: str) -> None:
    hashed = service_account_hashes(db).get(INGEST_ACCOUNT)
    if hashed is None or not verify_password(hashed, password):
        ensure_service_account(db, INGEST_ACCOUNT, password, actor="demo")


def _stored_password(path: Path) -> str | None:
    """The MQTT password in an existing firmware-config file, or None."""
    try:
        mqtt = tomllib.loads(path.read_text()).get("mqtt", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    password = mqtt.get("password") if isinstance(mqtt, dict) else None
    return password if isinstance(password, str) and password else None


def _device_hash(db: sqlite_utils.Database, device_id: str) -> str:
    row = db.execute("SELECT mqtt_hash FROM devices WHERE device_id = ?", [device_id]).fetchone()
    return str(row[0]) if row else ""


def _ensure_device(
    db: sqlite_utils.Database, paths: DemoPaths, device_id: str, mqtt_url: str
) -> bool:
    """Register ``device_id`` if new and (re)write its TOML; True if the device was created."""
    toml_path = paths.firmware_toml(device_id)
    password = _stored_password(toml_path)
    created = False
    try:
        get_device(db, device_id)
    except UnknownDeviceError:
        _, password = add_device(
            db,
            device_id,
            name=f"Demo button {device_id[5:]}",
            mapping=DEMO_MAPPING,
            env="dev",
            simulated=True,
            actor="demo",
        )
        created = True
    else:
        if password is None or not verify_password(_device_hash(db, device_id), password):
            log.warning(
                "demo.credentials_reissued",
                device_id=device_id,
                reason="firmware-config file missing or out of date",
            )
            password = rotate_credentials(db, device_id, actor="demo")
    text = render_agent_toml(
        device_id,
        mqtt_url=mqtt_url,
        password=password,
        outbox={"path": str(paths.outbox(device_id).resolve())},
    )
    if not toml_path.exists() or toml_path.read_text() != text:
        write_agent_toml(toml_path, text)
    return created


def write_acl(db: sqlite_utils.Database, path: Path) -> None:
    """The broker's ACL from the registry, in the format ``edgeorder broker-auth`` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    roles = account_roles(db)
    services = sorted(u for u, role in roles.items() if role == "service")
    observers = sorted(u for u, role in roles.items() if role == "observer")
    tmp.write_text(render_acl(services, observers=observers))
    tmp.replace(path)
