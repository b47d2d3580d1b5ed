"""Fixtures of the convergence and fault-injection tests: the real order core and ingest in
this event loop (the process-level chaos run starts its own, in ``tests.chaos.cluster``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ingest.support import Ingest, OrderCore, ingest_settings
from tests.support.mosquitto import MosquittoServer


@pytest.fixture
async def ordercore(tmp_path: Path) -> AsyncIterator[OrderCore]:
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
    running = await Ingest(ingest_settings(ingest_dir, mosquitto.url, ordercore.url)).start()
    yield running
    await running.stop()
