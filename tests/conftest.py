"""Fixtures shared by every test package: a broker, PostgreSQL, ingest's store on each
backend, and the chain in this event loop (``ordercore``, ``ingest``, ``probe``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.mosquitto import MosquittoServer, mosquitto_binary

if TYPE_CHECKING:
    from edgeorder.ingest.store.database import Database
    from tests.ingest.support import Ingest, OrderCore
    from tests.support.mqtt import MqttProbe


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


# --- the chain in this event loop: the real order core, ingest, a status probe ---------------
# (ingest, connectors, chaos and web tests; a package's conftest may override one of them)


@pytest.fixture
async def ordercore(tmp_path: Path) -> AsyncIterator[OrderCore]:
    """The real order core on a free port, its data in ``tmp_path/ordercore``."""
    from tests.ingest.support import OrderCore

    core = await OrderCore(tmp_path / "ordercore").start()
    yield core
    await core.stop()


@pytest.fixture
def ingest_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ingest"
    path.mkdir()
    return path


@pytest.fixture
async def ingest(
    ingest_dir: Path, mosquitto: MosquittoServer, ordercore: OrderCore
) -> AsyncIterator[Ingest]:
    """ingest in this event loop, on ``mosquitto`` and ``ordercore``."""
    from tests.ingest.support import Ingest, ingest_settings

    running = await Ingest(ingest_settings(ingest_dir, mosquitto.url, ordercore.url)).start()
    yield running
    await running.stop()


@pytest.fixture
def probe(mosquitto: MosquittoServer) -> Iterator[MqttProbe]:
    """An MQTT client subscribed to every device's status."""
    from tests.support.mqtt import MqttProbe

    client = MqttProbe(mosquitto.port)
    assert client.wait_connected()
    client.subscribe("edgeorder/v1/devices/+/status")
    yield client
    client.close()
