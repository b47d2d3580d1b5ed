"""The platform webhook receiver's read-sharing: deliveries for one order that arrive while its
state is being read share that one read (and its outcome)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import OrderResult, TransientError
from edgeorder.ingest.orders.state_sync import OrderStateSync


class _SlowPlatform:
    name = "slow"

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.fail = fail

    async def get_order(self, order_id: str) -> OrderResult:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        if self.fail:
            raise TransientError("down")
        return OrderResult(order_id=order_id, state=p.State.PAID)


def _sync(platform: _SlowPlatform, applied: list[str]) -> OrderStateSync:
    sync = OrderStateSync(
        writer=None,  # type: ignore[arg-type]
        read=None,  # type: ignore[arg-type]
        connector=platform,  # type: ignore[arg-type]
        statuses=None,  # type: ignore[arg-type]
        secret="",
        poll_interval_s=60,
    )

    async def apply(order_id: str, state: p.State, code: Any, source: str) -> list[object]:
        applied.append(order_id)
        return [object()]

    sync.apply = apply  # type: ignore[method-assign,assignment]
    return sync


async def test_deliveries_during_a_read_share_it() -> None:
    platform, applied = _SlowPlatform(), list[str]()
    sync = _sync(platform, applied)
    first = asyncio.create_task(sync._read_and_apply("7"))
    await platform.started.wait()
    joined = [asyncio.create_task(sync._read_and_apply("7")) for _ in range(3)]
    other = asyncio.create_task(sync._read_and_apply("8"))
    platform.gate.set()
    assert await first == "applied"
    assert [await t for t in joined] == ["duplicate"] * 3
    assert await other == "applied"
    assert (platform.calls, sorted(applied)) == (2, ["7", "8"])
    assert await sync._read_and_apply("7") == "applied"  # a later delivery reads again


async def test_a_shared_read_that_fails_fails_every_delivery() -> None:
    platform, applied = _SlowPlatform(fail=True), list[str]()
    sync = _sync(platform, applied)
    first = asyncio.create_task(sync._read_and_apply("7"))
    await platform.started.wait()
    second = asyncio.create_task(sync._read_and_apply("7"))
    platform.gate.set()
    for task in (first, second):
        with pytest.raises(TransientError):
            await task
    assert applied == []
    assert sync._reading == {}
