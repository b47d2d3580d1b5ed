"""The registry tools on the workers' PostgreSQL (``--db-url``, env ``EDGEORDER_INGEST_DB_URL``):
``edgeorder device``, ``evendi`` and ``broker-auth`` as subprocesses, as an operator runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgeorder.ingest.domain.mosquitto_files import parse_passwd
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from tests.support.proc import run_cli

OWNER: list[str] = [] if os.geteuid() == 0 else ["--owner", ""]


def test_device_evendi_and_broker_auth_work_on_the_shared_database(
    pg_url: str, tmp_path: Path
) -> None:
    added = run_cli(
        "device", "add", "pg-01", "--sku", "COFFEE-1KG", "--db-url", pg_url, "--allow-unknown-sku"
    )
    assert added.returncode == 0, added.stderr
    listed = run_cli("device", "list", "--json", EDGEORDER_INGEST_DB_URL=pg_url)
    assert [d["device_id"] for d in json.loads(listed.stdout)] == ["pg-01"]
    assert run_cli("device", "disable", "pg-01", "--db-url", pg_url).returncode == 0
    assigned = run_cli("evendi", "assign", "pg-01", "PED-1", "--json", "--db-url", pg_url)
    assert assigned.returncode == 0, assigned.stderr
    assert json.loads(assigned.stdout)["state"] == "pending"
    password_file = tmp_path / "ingest.pass"
    password_file.write_text("svc-secret\n")
    out = tmp_path / "broker"
    wrote = run_cli(
        "broker-auth",
        "--out",
        str(out),
        "--db-url",
        pg_url,
        "--service",
        f"ingest={password_file}",
        *OWNER,
    )
    assert wrote.returncode == 0, wrote.stderr
    assert set(parse_passwd((out / "passwd").read_text())) == {"ingest"}  # pg-01 is disabled
    with Database.from_url(pg_url).open(migrate=False) as conn:
        assert registry.get_device(conn, "pg-01")["enabled"] is False
        actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id").fetchall()]
    assert actions[:3] == ["device.add", "device.disable", "evendi.assign"]
    assert "broker.files_written" in actions


def test_a_bad_url_is_refused_with_the_reason() -> None:
    for url, reason in (
        ("mysql://x/y", "not a database URL"),
        ("postgresql://user:secret@host-only", "no database name"),
    ):
        done = run_cli("device", "list", "--db-url", url)
        assert done.returncode == 2
        assert reason in done.stderr
        assert "secret" not in done.stderr  # the password is never echoed
