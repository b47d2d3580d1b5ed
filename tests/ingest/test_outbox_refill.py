"""The outbox worker refills its slots in batches: a finished platform call does not cost a
read of the due rows until half the slots are free, and every due row is still ordered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import OrderRequest, OrderResult
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.reader import Reader
from tests.ingest.outbox_harness import record_presses, running_worker
from tests.ingest.support import add_device

LIMIT = 8
ROWS = 16


class _GatedPlatform:
    """Each create_order waits until the test lets exactly that call through."""

    name = "gated"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.changed = asyncio.Condition()

    async def create_order(self, request: OrderRequest) -> OrderResult:
        gate = self.gates.setdefault(request.idempotency_key, asyncio.Event())
        async with self.changed:
            self.started.append(request.idempotency_key)
            self.changed.notify_all()
        await gate.wait()
        return OrderResult(order_id=f"o-{request.idempotency_key}", state=p.State.ORDERED)

    def release(self, key: str) -> None:
        self.gates.setdefault(key, asyncio.Event()).set()

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        raise AssertionError("no cancel expected")

    async def get_order(self, order_id: str) -> OrderResult:
        raise AssertionError("no poll expected")

    async def close(self) -> None:
        return None


class _Transport:
    def __init__(self) -> None:
        self.ordered: list[str] = []
        self.changed = asyncio.Condition()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None:
        status = p.Status.model_validate_json(payload)
        if status.state is p.State.ORDERED:
            assert status.event_id is not None
            self.ordered.append(status.event_id)
            asyncio.get_running_loop().create_task(self._notify())
        return None

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_ordered(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.ordered) >= count), 10)


async def test_finished_calls_refill_in_batches_and_every_row_is_ordered(
    ingest_dir: Path,
) -> None:
    add_device(ingest_dir, "refill-01", allow_parallel=True)
    db_path = ingest_dir / "ingest.db"
    keys = record_presses(db_path, "refill-01", ROWS)
    platform, transport = _GatedPlatform(), _Transport()
    ordered_at_read: list[int] = []  # how many orders had finished when each read began

    def counting(reader: Reader) -> Callable[[Callable[[Conn], Any]], Any]:
        async def read(fn: Callable[[Conn], Any]) -> Any:
            ordered_at_read.append(len(transport.ordered))
            return await reader(fn)

        return read

    async with running_worker(
        db_path,
        platform,
        transport,
        read=counting,
        retry_base_s=0.01,
        retry_max_s=0.02,
        concurrency=LIMIT,
    ):
        async with platform.changed:
            await asyncio.wait_for(
                platform.changed.wait_for(lambda: len(platform.started) == LIMIT), 10
            )
        assert ordered_at_read == [0]  # one read filled every slot
        first = list(platform.started)
        for n, key in enumerate(first[: LIMIT // 2], start=1):  # one call at a time
            platform.release(key)
            await transport.wait_ordered(n)
        # no read while more than half the slots were busy; the one that freed half reads
        async with platform.changed:
            await asyncio.wait_for(
                platform.changed.wait_for(lambda: len(platform.started) == LIMIT + LIMIT // 2), 10
            )
        assert ordered_at_read[:2] == [0, LIMIT // 2]
        for key in keys:
            platform.release(key)
        await transport.wait_ordered(ROWS)
    assert sorted(transport.ordered) == sorted(keys)  # each row ordered exactly once
    assert len(set(platform.started)) == ROWS
