"""The outbox worker hands due ``create`` rows to a batch-capable connector in groups of at most
``batch_max``; each row is settled by its own answer (ordered, queued for a retry, failed), and
a call that fails as a whole leaves every row of it buffered. Nothing is ordered twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import (
    OrderRequest,
    OrderResult,
    PermanentError,
    PlatformError,
    TransientError,
)
from edgeorder.ingest.store.db import open_db
from tests.ingest.outbox_harness import record_presses, running_worker
from tests.ingest.support import add_device

BATCH = 4
Done = Callable[[dict[str, list[str]]], bool]


class _BatchPlatform:
    """Answers each request by its key: ``refuse`` -> permanent, ``later`` -> transient."""

    name = "batching"
    batch_max = BATCH

    def __init__(self, refuse: set[str], later: set[str], down_calls: int = 0) -> None:
        self.refuse, self.later = refuse, later
        self.down_calls = down_calls  # the first calls fail as a whole
        self.calls: list[list[str]] = []
        self.single_calls = 0

    async def create_orders(
        self, requests: list[OrderRequest]
    ) -> list[OrderResult | PlatformError]:
        keys = [r.idempotency_key for r in requests]
        self.calls.append(keys)
        if len(self.calls) <= self.down_calls:
            raise TransientError("platform unreachable")
        out: list[OrderResult | PlatformError] = []
        for key in keys:
            if key in self.refuse:
                out.append(PermanentError("sku not sold here", status=422))
            elif key in self.later:
                out.append(TransientError("platform HTTP 503", status=503))
            else:
                out.append(OrderResult(order_id=f"o-{key}", state=p.State.ORDERED))
        return out

    async def create_order(self, request: OrderRequest) -> OrderResult:
        self.single_calls += 1
        raise AssertionError("a batch connector gets create_orders")

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        raise AssertionError("no cancel expected")

    async def get_order(self, order_id: str) -> OrderResult:
        raise AssertionError("no poll expected")

    async def close(self) -> None:
        return None


class _Transport:
    """Keeps the last state published per event and wakes waiters."""

    def __init__(self) -> None:
        self.states: dict[str, list[str]] = {}
        self.changed = asyncio.Event()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None:
        status = p.Status.model_validate_json(payload)
        assert status.event_id is not None
        self.states.setdefault(status.event_id, []).append(status.state.value)
        self.changed.set()
        return None

    async def wait(self, done: Done) -> None:
        async def loop() -> None:
            while not done(self.states):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), 10)


async def _run(
    ingest_dir: Path, platform: _BatchPlatform, keys: list[str], done: Done, concurrency: int
) -> _Transport:
    transport = _Transport()
    async with running_worker(
        ingest_dir / "ingest.db",
        platform,
        transport,
        retry_base_s=30,
        retry_max_s=60,
        concurrency=concurrency,
    ):
        await transport.wait(done)
    return transport


def _outbox(db_path: Path) -> dict[str, tuple[str, int]]:
    conn = open_db(db_path).conn
    rows = conn.execute("SELECT event_id, state, attempts FROM order_outbox").fetchall()
    conn.close()
    return {r[0]: (r[1], r[2]) for r in rows}


async def test_rows_go_in_groups_and_each_is_settled_by_its_own_answer(ingest_dir: Path) -> None:
    add_device(ingest_dir, "batch-01", allow_parallel=True)
    keys = record_presses(ingest_dir / "ingest.db", "batch-01", 10)
    refused, later = {keys[1]}, {keys[6]}
    platform = _BatchPlatform(refuse=refused, later=later)
    final = {"ordered", "failed", "queued"}
    transport = await _run(
        ingest_dir,
        platform,
        keys,
        concurrency=8,
        done=lambda states: all(final & set(states.get(k, ())) for k in keys),
    )

    sizes = [len(c) for c in platform.calls]
    assert max(sizes) == BATCH  # grouped...
    assert all(s <= BATCH for s in sizes)  # ...never over the platform's limit
    assert sorted(k for c in platform.calls for k in c) == sorted(keys)  # each sent once
    assert platform.single_calls == 0
    for key in keys:
        expected = "failed" if key in refused else "queued" if key in later else "ordered"
        assert transport.states[key] == [expected]
    outbox = _outbox(ingest_dir / "ingest.db")
    assert outbox[keys[1]] == ("failed", 1)
    assert outbox[keys[6]] == ("pending", 1)  # kept for its retry
    assert outbox[keys[0]] == ("done", 1)


async def test_a_call_that_fails_as_a_whole_keeps_every_row_of_it(ingest_dir: Path) -> None:
    add_device(ingest_dir, "batch-01", allow_parallel=True)
    keys = record_presses(ingest_dir / "ingest.db", "batch-01", 3)
    platform = _BatchPlatform(refuse=set(), later=set(), down_calls=1)
    transport = await _run(
        ingest_dir,
        platform,
        keys,
        concurrency=8,
        done=lambda states: all("queued" in states.get(k, ()) for k in keys),
    )

    assert platform.calls == [keys]  # one call carried all three, and it failed
    assert _outbox(ingest_dir / "ingest.db") == {k: ("pending", 1) for k in keys}
    assert all(transport.states[k] == ["queued"] for k in keys)
