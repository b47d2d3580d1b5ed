"""``edgeorder broker-auth``: its files parse as Mosquitto's, and a real Mosquitto enforces them."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl, parse_passwd
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.ingest.support import add_device
from tests.support.mosquitto import MosquittoServer, mosquitto_binary
from tests.support.mqtt import MqttProbe
from tests.support.proc import run_cli


@pytest.fixture
def auth_dir(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    data = tmp_path / "ingest"
    passwords = {name: add_device(data, name) for name in ("dev-a", "dev-b", "dev-off")}
    db = open_db(data / "ingest.db")
    registry.ensure_service_account(db, "ingest", "svc-secret")
    registry.set_enabled(db, "dev-off", False)
    db.conn.close()
    passwords["ingest"] = "svc-secret"
    # Outside pytest's 0700 tmp dir: a root-started Mosquitto reads its files as user mosquitto.
    outer = tempfile.TemporaryDirectory(prefix="edgeorder-auth-")
    out = Path(outer.name)
    out.chmod(0o755)
    result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data), "--mode", "644")
    assert result.returncode == 0, result.stderr
    yield out, passwords
    outer.cleanup()


def test_files_parse_and_grant_exactly_the_architecture_rule(
    auth_dir: tuple[Path, dict[str, str]],
) -> None:
    out, passwords = auth_dir
    hashes = parse_passwd((out / "passwd").read_text())
    assert set(hashes) == {"dev-a", "dev-b", "ingest"}  # the disabled device is left out
    assert all(verify_password(hashes[u], passwords[u]) for u in hashes)
    acl = Acl(parse_acl((out / "acl").read_text()))
    own = p.device_topic("dev-a", p.Channel.EVENTS)
    assert acl.allows("dev-a", "c", own, Access.WRITE)
    assert not acl.allows("dev-a", "c", p.device_topic("dev-b", p.Channel.EVENTS), Access.WRITE)
    assert acl.allows("dev-a", "c", p.device_topic("dev-a", p.Channel.STATUS), Access.READ)
    assert not acl.allows("dev-a", "c", p.device_topic("dev-a", p.Channel.STATUS), Access.WRITE)
    assert not acl.allows("dev-a", "c", p.device_topic("dev-b", p.Channel.STATUS), Access.READ)
    assert not acl.allows("dev-a", "c", own, Access.READ)
    for channel in ("presence", "telemetry", "config/reported"):
        assert acl.allows("dev-a", "c", f"{p.TOPIC_ROOT}/dev-a/{channel}", Access.WRITE)
    assert acl.allows("dev-a", "c", p.device_topic("dev-a", p.Channel.CONFIG), Access.READ)
    assert acl.allows("ingest", "i", f"{p.TOPIC_ROOT}/+/events", Access.READ, is_filter=True)
    assert acl.allows("ingest", "i", p.device_topic("dev-b", p.Channel.STATUS), Access.WRITE)


@pytest.mark.integration
def test_real_mosquitto_lets_a_device_publish_only_its_own_events(
    auth_dir: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed")
    out, passwords = auth_dir
    server = MosquittoServer(
        tmp_path / "mq", password_file=out / "passwd", acl_file=out / "acl"
    ).start()
    clients: list[MqttProbe] = []
    try:

        def connect(user: str, password: str) -> MqttProbe:
            client = MqttProbe(
                server.port,
                username=user,
                password=password,
                client_id=f"{user}-{uuid.uuid4().hex[:6]}",
            )
            clients.append(client)
            return client

        service = connect("ingest", passwords["ingest"])
        assert service.wait_connected()
        service.subscribe(f"{p.TOPIC_ROOT}/+/events")
        device = connect("dev-a", passwords["dev-a"])
        assert device.wait_connected()
        device.publish(p.device_topic("dev-b", p.Channel.EVENTS), b"forged")  # dropped
        device.publish(p.device_topic("dev-a", p.Channel.EVENTS), b"own")
        (got,) = service.wait_for(lambda m: m.payload == b"own")
        # one client's messages arrive in order: the forged one would have come first
        assert [m.payload for m in service.messages] == [b"own"]
        assert got.topic == p.device_topic("dev-a", p.Channel.EVENTS)

        assert not connect("dev-a", "wrong-password").wait_connected()
        assert not connect("dev-off", passwords["dev-off"]).wait_connected()
    finally:
        for client in clients:
            client.close()
        server.stop()


def test_service_option_registers_ingests_own_account(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    secret = tmp_path / "ingest.pass"
    secret.write_text("svc-from-file\n")
    out = tmp_path / "auth"
    result = run_cli(
        "broker-auth", "--out", str(out), "--data-dir", str(data), "--service", f"ingest={secret}"
    )
    assert result.returncode == 0, result.stderr
    hashes = parse_passwd((out / "passwd").read_text())
    assert verify_password(hashes["ingest"], "svc-from-file")
    assert "user ingest" in (out / "acl").read_text()


@pytest.mark.parametrize("value", ["ingest", "ingest=", "bad user=x", "ingest=/no/such/file"])
def test_service_option_refuses_a_bad_value(tmp_path: Path, value: str) -> None:
    result = run_cli(
        "broker-auth",
        "--out",
        str(tmp_path / "auth"),
        "--data-dir",
        str(tmp_path / "ingest"),
        "--service",
        value,
    )
    assert result.returncode == 2
    assert "--service" in result.stderr
    assert not (tmp_path / "auth").exists()
