"""``edgeorder tls``: a CA made once and kept, a server certificate a TLS client verifies for
each name it was issued for, and a key only the broker reads."""

from __future__ import annotations

import os
import pwd
import ssl
import stat
from pathlib import Path

import pytest

from tests.support.proc import run_cli

AS_ROOT = os.geteuid() == 0
OWNER: list[str] = [] if AS_ROOT else ["--owner", ""]


def tls(out: Path, *hosts: str) -> None:
    args = [arg for host in hosts for arg in ("--host", host)]
    result = run_cli("tls", "--out", str(out), *args, *OWNER)
    assert result.returncode == 0, result.stderr


def client_context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default; be ready for it
    return context


def verifies_for(out: Path, name: str) -> bool:
    """A TLS handshake in memory: the server presents server.crt, the client checks ``name``."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(out / "server.crt", out / "server.key")
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context(out / "ca.crt").wrap_bio(c_in, c_out, server_hostname=name)
    peer = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, peer):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError:
                return False
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return client.version() is not None


def test_the_certificate_verifies_for_every_name_and_no_other(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    tls(out, "192.0.2.10", "mqtt.example.net")
    assert verifies_for(out, "192.0.2.10")
    assert verifies_for(out, "mqtt.example.net")
    assert not verifies_for(out, "192.0.2.11")
    assert not verifies_for(out, "other.example.net")


def test_a_rerun_keeps_the_ca_and_reissues_the_server_certificate(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    tls(out, "192.0.2.10")
    ca, first = (out / "ca.crt").read_bytes(), (out / "server.crt").read_bytes()
    tls(out, "192.0.2.10", "mqtt.example.net")
    assert (out / "ca.crt").read_bytes() == ca  # devices keep trusting it
    assert (out / "server.crt").read_bytes() != first
    assert verifies_for(out, "mqtt.example.net")


def test_keys_are_private(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    tls(out, "192.0.2.10")
    assert stat.S_IMODE((out / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "server.key").stat().st_mode) == 0o640
    if AS_ROOT:
        assert pwd.getpwuid((out / "server.key").stat().st_uid).pw_name == "mosquitto"


def test_half_a_ca_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    tls(out, "192.0.2.10")
    (out / "ca.key").unlink()
    result = run_cli("tls", "--out", str(out), "--host", "192.0.2.10", *OWNER)
    assert result.returncode == 1
    assert "delete both" in result.stderr


@pytest.mark.parametrize("days", ["0", "5000"])
def test_validity_is_bounded(tmp_path: Path, days: str) -> None:
    result = run_cli("tls", "--out", str(tmp_path / "tls"), "--host", "x", "--days", days, *OWNER)
    assert result.returncode == 1
    assert "--days" in result.stderr
