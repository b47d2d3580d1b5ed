"""Fixtures: one fake platform server per test, on a free port, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgeorder.ingest.connectors.settings import ConnectorSettings
from tests.connectors.fake_evendi import FakeEvendi
from tests.connectors.fake_nuvemshop import FakeNuvemshop
from tests.connectors.fake_oneentry import FakeOneEntry
from tests.ingest.support import Ingest, ingest_settings
from tests.support.mosquitto import MosquittoServer


@pytest.fixture
async def nuvemshop() -> AsyncIterator[FakeNuvemshop]:
    fake = FakeNuvemshop()
    await fake.serve()
    yield fake
    await fake.stop()


@pytest.fixture
async def evendi() -> AsyncIterator[FakeEvendi]:
    fake = FakeEvendi()
    await fake.serve()
    yield fake
    await fake.stop()


@pytest.fixture
async def oneentry() -> AsyncIterator[FakeOneEntry]:
    fake = FakeOneEntry()
    await fake.serve()
    yield fake
    await fake.stop()


# --- end to end: a real broker, ingest in this loop, a fake platform over HTTP ------------------


async def start_ingest(
    data_dir: Path, mosquitto: MosquittoServer, connector: ConnectorSettings, **extra: object
) -> Ingest:
    """ingest talking to ``connector``'s platform (a fake), through a real Mosquitto."""
    settings = ingest_settings(data_dir, mosquitto.url, "", connector=connector, **extra)
    return await Ingest(settings).start()
