"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import MosquittoServer, mosquitto_binary


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A fresh Mosquitto (project config, anonymous allowed) on a free port."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (apt-get install mosquitto)")
    server = MosquittoServer(tmp_path / "mosquitto").start()
    yield server
    server.stop()
