"""``edgeorder broker-auth``: its files parse as Mosquitto's, a real Mosquitto enforces them,
they are replaced atomically with an owner and mode the broker can read, the registry is
opened as ingest's data directory's owner, and ``--reload`` signals only Mosquitto."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.cli.broker_auth import BROKER_FILES_WRITTEN
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl, parse_passwd
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.ingest.support import add_device
from tests.support.mosquitto import MosquittoServer, mosquitto_binary
from tests.support.mqtt import MqttProbe
from tests.support.proc import run_cli

AS_ROOT = os.geteuid() == 0
OWNER: list[str] = [] if AS_ROOT else ["--owner", ""]
"""As root the files go to mosquitto:mosquitto (the default); otherwise they stay ours."""
needs_root = pytest.mark.skipif(not AS_ROOT, reason="chown and seteuid need root")


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
    result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data), *OWNER)
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
        "broker-auth",
        "--out",
        str(out),
        "--data-dir",
        str(data),
        "--service",
        f"ingest={secret}",
        *OWNER,
    )
    assert result.returncode == 0, result.stderr
    hashes = parse_passwd((out / "passwd").read_text())
    assert verify_password(hashes["ingest"], "svc-from-file")
    assert "user ingest" in (out / "acl").read_text()


def test_observer_option_makes_a_read_only_account_and_a_role_can_change(
    tmp_path: Path,
) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    ha = tmp_path / "ha.pass"
    out = tmp_path / "auth"
    base = ["broker-auth", "--out", str(out), "--data-dir", str(data), *OWNER]
    first = run_cli(*base, "--observer", f"homeassistant={ha}", "--create-password")
    assert first.returncode == 0, first.stderr
    assert f"created {ha}: a new password for observer account homeassistant" in first.stdout
    assert "1 devices, 0 service accounts, 1 observers" in first.stdout
    hashes = parse_passwd((out / "passwd").read_text())
    assert verify_password(hashes["homeassistant"], ha.read_text().strip())
    acl = Acl(parse_acl((out / "acl").read_text()))
    status = p.device_topic("dev-a", p.Channel.STATUS)
    assert acl.allows("homeassistant", "h", status, Access.READ)
    assert not acl.allows("homeassistant", "h", status, Access.WRITE)
    # the same name as a service account: the role changes, the ACL follows
    second = run_cli(*base, "--service", f"homeassistant={ha}")
    assert second.returncode == 0, second.stderr
    assert "account homeassistant: role changed from observer to service" in second.stdout
    assert "role changed" not in run_cli(*base, "--service", f"homeassistant={ha}").stdout
    acl = Acl(parse_acl((out / "acl").read_text()))
    assert acl.allows("homeassistant", "h", status, Access.WRITE)
    twice = run_cli(*base, "--service", f"ha={ha}", "--observer", f"ha={ha}")
    assert twice.returncode == 1
    assert "accounts named more than once: ['ha']" in twice.stderr


@pytest.mark.parametrize("option", ["--service", "--observer"])
@pytest.mark.parametrize(
    ("value", "code"),
    [("ingest", 2), ("ingest=", 2), ("bad user=x", 2), ("ingest=/no/such/file", 1)],
)
def test_account_options_refuse_a_bad_value(
    tmp_path: Path, option: str, value: str, code: int
) -> None:
    (tmp_path / "ingest").mkdir()
    result = run_cli(
        "broker-auth",
        "--out",
        str(tmp_path / "auth"),
        "--data-dir",
        str(tmp_path / "ingest"),
        option,
        value,
        *OWNER,
    )
    assert result.returncode == code
    assert option in result.stderr
    assert not (tmp_path / "auth").exists()


def shared_dir(prefix: str) -> Path:
    """A directory outside pytest's 0700 tmp tree, so other users can reach into it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@needs_root
def test_files_belong_to_mosquitto_0640_and_stay_so_when_rewritten(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    out = shared_dir("edgeorder-auth-")
    try:
        inodes = []
        for _ in range(2):  # the README says: again after every change
            result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data))
            assert result.returncode == 0, result.stderr
            for name in ("passwd", "acl"):
                st = (out / name).stat()
                assert pwd.getpwuid(st.st_uid).pw_name == "mosquitto"
                assert grp.getgrgid(st.st_gid).gr_name == "mosquitto"
                assert stat.S_IMODE(st.st_mode) == 0o640
            inodes.append((out / "passwd").stat().st_ino)
        assert inodes[0] != inodes[1]  # replaced by a rename, never rewritten in place
        assert sorted(os.listdir(out)) == ["acl", "passwd"]  # no temporary left behind
    finally:
        subprocess.run(["rm", "-rf", str(out)], check=True)


@needs_root
def test_owner_group_and_mode_are_configurable(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    out = tmp_path / "auth"
    result = run_cli(
        "broker-auth",
        "--out",
        str(out),
        "--data-dir",
        str(data),
        "--owner",
        ":mosquitto",
        "--mode",
        "600",
    )
    assert result.returncode == 0, result.stderr
    st = (out / "passwd").stat()
    assert (st.st_uid, grp.getgrgid(st.st_gid).gr_name) == (0, "mosquitto")
    assert stat.S_IMODE(st.st_mode) == 0o600
    bad = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data), "--owner", "nobody-x")
    assert bad.returncode == 1
    assert "no user 'nobody-x'" in bad.stderr


@needs_root
def test_an_out_dir_the_broker_cannot_enter_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    out = tmp_path / "auth"
    out.mkdir(mode=0o700)
    result = run_cli("broker-auth", "--out", str(out), "--data-dir", str(data))
    assert result.returncode == 1
    assert "could not enter it" in result.stderr
    assert not (out / "passwd").exists()


@needs_root
def test_create_password_makes_ingests_password_file_once(tmp_path: Path) -> None:
    data = shared_dir("edgeorder-data-")
    etc = shared_dir("edgeorder-etc-")
    try:
        service = pwd.getpwnam("nobody")
        os.chown(data, service.pw_uid, service.pw_gid)
        secret = etc / "edgeorder" / "ingest.pass"
        args = ["--out", str(tmp_path / "auth"), "--data-dir", str(data)]
        args += ["--service", f"ingest={secret}", "--create-password"]
        first = run_cli("broker-auth", *args)
        assert first.returncode == 0, first.stderr
        assert f"created {secret}" in first.stdout
        st = secret.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, service.pw_gid, 0o640)
        password = secret.read_text().strip()
        assert len(password) >= 20
        hashes = parse_passwd((tmp_path / "auth" / "passwd").read_text())
        assert verify_password(hashes["ingest"], password)
        again = run_cli("broker-auth", *args)
        assert again.returncode == 0, again.stderr
        assert "created" not in again.stdout
        assert secret.read_text().strip() == password  # never replaced
        # Opened as the data directory's owner: ingest (user nobody here) can open it.
        for name in os.listdir(data):
            assert (data / name).stat().st_uid == service.pw_uid, name
    finally:
        subprocess.run(["rm", "-rf", str(data), str(etc)], check=True)


def test_without_create_password_a_missing_file_says_how(tmp_path: Path) -> None:
    (tmp_path / "ingest").mkdir()
    result = run_cli(
        "broker-auth",
        "--out",
        str(tmp_path / "auth"),
        "--data-dir",
        str(tmp_path / "ingest"),
        "--service",
        f"ingest={tmp_path / 'missing.pass'}",
        *OWNER,
    )
    assert result.returncode == 1
    assert "--create-password" in result.stderr


def test_reload_refuses_a_pid_file_that_does_not_name_mosquitto(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        args = ["--out", str(tmp_path / "auth"), "--data-dir", str(data), *OWNER, "--reload"]
        result = run_cli("broker-auth", *args, "--pid-file", str(pid_file))
        assert result.returncode == 1
        assert "'sleep', not 'mosquitto'" in result.stderr
        assert stranger.poll() is None  # not signalled
        missing = run_cli("broker-auth", *args, "--pid-file", str(tmp_path / "none.pid"))
        assert missing.returncode == 1
        assert "is mosquitto running?" in missing.stderr
    finally:
        stranger.send_signal(signal.SIGKILL)
        stranger.wait()


def test_each_run_is_recorded_for_the_dashboard(tmp_path: Path) -> None:
    data = tmp_path / "ingest"
    add_device(data, "dev-a")
    result = run_cli(
        "broker-auth", "--out", str(tmp_path / "auth"), "--data-dir", str(data), *OWNER
    )
    assert result.returncode == 0, result.stderr
    db = open_db(data / "ingest.db")
    try:
        rows = db.execute(
            "SELECT actor, detail FROM audit WHERE action = ?", [BROKER_FILES_WRITTEN]
        )
        assert rows.fetchall() == [("cli", "1 devices, 0 service accounts, 0 observers")]
    finally:
        db.conn.close()


@needs_root
def test_as_root_a_missing_data_dir_is_refused_not_created(tmp_path: Path) -> None:
    data = tmp_path / "not-yet"
    secret = tmp_path / "ingest.pass"
    result = run_cli(
        "broker-auth",
        "--out",
        str(tmp_path / "auth"),
        "--data-dir",
        str(data),
        "--service",
        f"ingest={secret}",
        "--create-password",
    )
    assert result.returncode == 1
    assert "install -d -o edgeorder" in result.stderr
    assert not data.exists()
    assert not secret.exists()
