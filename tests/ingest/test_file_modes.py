"""ingest's database (password hashes, sessions) and its WAL/SHM files are private, whatever
the umask; the demo's secrets.json too (issue 11 §4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.demo.secrets import load_secrets, save_secrets
from edgeorder.files import make_private_file
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from tests.support.umask import mode, umask


def test_a_new_database_and_its_wal_and_shm_are_0600_under_umask_000(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ingest.db"
    with umask(0o000):
        db = open_db(path)
        try:
            mapping = p.ButtonMapping(single=p.ReorderAction(sku="COFFEE-1KG", quantity=1))
            registry.add_device(db, "kitchen-01", mapping=mapping)
            sidecars = [path.with_name("ingest.db-wal"), path.with_name("ingest.db-shm")]
            assert all(f.exists() for f in sidecars)  # open, in WAL mode, after a write
            assert {f.name: mode(f) for f in [path, *sidecars]} == {
                "ingest.db": 0o600,
                "ingest.db-wal": 0o600,
                "ingest.db-shm": 0o600,
            }
        finally:
            db.conn.close()
    assert mode(path.parent) == 0o700


def test_an_older_world_readable_database_is_narrowed_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "ingest.db"
    with umask(0o000):
        sqlite3.connect(path).close()  # as SQLite itself creates it: 0644 & ~umask
    assert mode(path) == 0o644
    open_db(path).conn.close()
    assert mode(path) == 0o600


def test_a_group_readable_file_may_stay_so(tmp_path: Path) -> None:
    path = tmp_path / "ingest.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    assert make_private_file(path) == []
    assert mode(path) == 0o640
    path.chmod(0o660)  # group write goes
    assert make_private_file(path) == [path]
    assert mode(path) == 0o640


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_demo_secrets_are_0600(tmp_path: Path, mask: int) -> None:
    path = tmp_path / f"demo-{mask:o}" / "secrets.json"
    with umask(mask):
        save_secrets(path, load_secrets(path, env={}))
        save_secrets(path, load_secrets(path, env={}))  # rewritten in place, still private
    assert mode(path) == 0o600
