"""Fixtures: one fake platform server per test, on a free port, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.fake_evendi import FakeEvendi
from tests.connectors.fake_nuvemshop import FakeNuvemshop
from tests.connectors.fake_oneentry import FakeOneEntry


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
