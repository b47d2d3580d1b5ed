"""In-process notifications: what changed, for the dashboard's live view and for wake-ups.

Publishing never blocks and never fails: each subscriber has a bounded queue, and a subscriber
that falls behind loses its oldest notifications (it is told so by a ``resync`` notice and
re-reads the database). The database stays the source of truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Bus", "Notice"]


@dataclass(frozen=True)
class Notice:
    """``kind``: presence, telemetry, event, status, order, rejection, device, outbox, resync.

    ``origin``: the worker that published it when it came from another worker of the same
    PostgreSQL ledger (``ingest.store.fanout``); None when this process published it."""

    kind: str
    device_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None


class Bus:
    """Fan-out of ``Notice`` to every current subscriber; call from the event loop only."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        # queue -> the kinds it wants (None: every kind); "resync" always goes to everyone
        self._subscribers: dict[asyncio.Queue[Notice], frozenset[str] | None] = {}

    def wants(self, kind: str) -> bool:
        """True if some subscriber would receive a notice of ``kind`` (skip building it if not)."""
        return any(kinds is None or kind in kinds for kinds in self._subscribers.values())

    def publish(self, notice: Notice) -> None:
        for queue, kinds in self._subscribers.items():
            if kinds is not None and notice.kind not in kinds:
                continue
            if queue.full():
                queue.get_nowait()
                queue.put_nowait(Notice("resync"))
                continue
            queue.put_nowait(notice)

    @asynccontextmanager
    async def subscribe(
        self, kinds: frozenset[str] | None = None
    ) -> AsyncIterator[asyncio.Queue[Notice]]:
        """``async with bus.subscribe() as queue: notice = await queue.get()``; ``kinds``
        limits the notices to those kinds (plus ``resync``)."""
        queue: asyncio.Queue[Notice] = asyncio.Queue(self._queue_size)
        self._subscribers[queue] = None if kinds is None else kinds | {"resync"}
        try:
            yield queue
        finally:
            self._subscribers.pop(queue, None)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
