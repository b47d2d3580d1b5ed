"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.mosquitto import MosquittoServer, mosquitto_binary

if TYPE_CHECKING:
    from edgeorder.ingest.store.database import Database


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A fresh Mosquitto (project config, anonymous allowed) on a free port."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    server = MosquittoServer(tmp_path / "mosquitto").start()
    yield server
    server.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database of this test (dropped after it)."""
    from tests.support.postgres import require_postgres, scratch_database

    require_postgres()
    with scratch_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """ingest's store on each backend: a SQLite file in WAL mode, a PostgreSQL database."""
    from edgeorder.ingest.store.database import Database

    if request.param == "sqlite":
        return Database.sqlite(tmp_path / "ingest.db")
    return Database.from_url(request.getfixturevalue("pg_url"))
