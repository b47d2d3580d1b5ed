"""Tracked status delivery: which ``status_history`` rows the broker has acknowledged.

A status is committed before it is published, so a process that dies in between (or a broker
that goes away with the publish in flight) would leave the device uninformed. Every history row
therefore stays *unconfirmed* until paho reports the PUBACK of the QoS 1 publish that carried
it; ingest re-publishes, at start-up, the current status of every event with unconfirmed rows
(``ledger.unconfirmed_statuses``).

The hot path stays cheap: confirmations are collected in memory and written by the single
writer INSIDE its next group commit (``write_confirmed`` is the writer's ``before_commit``
hook), so they cost no transaction of their own under load. When the writer is idle, a timer
submits one flush after ``idle_flush_s``. A confirmation lost in a crash only means one
harmless repeat at the next start (devices match statuses by ``event_id``).

Thread use: ``sent``/``confirmed`` run on the event loop (the MQTT link runs paho there and
reports PUBACKs directly); ``write_confirmed`` runs on the writer thread and takes the
collected ids under a lock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.database import Conn

__all__ = ["DeliveryTracker"]

log = structlog.get_logger(__name__)


class DeliveryTracker:
    """Maps in-flight publishes (paho ``mid``) to history rows and records their PUBACKs."""

    def __init__(
        self, *, idle_flush_s: float = 0.5, clock: Callable[[], datetime] = p.utcnow
    ) -> None:
        self._idle_flush_s = idle_flush_s
        self._clock = clock
        self._inflight: dict[int, tuple[int, ...]] = {}  # mid -> history ids (loop only)
        self._confirmed: list[int] = []  # guarded by _lock (loop appends, writer takes)
        self._lock = threading.Lock()
        self._flush: Callable[[], object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._settled = asyncio.Event()
        self._settled.set()
        self.written = 0

    def start(self, flush: Callable[[], object]) -> None:
        """``flush()`` submits ``write_confirmed`` to the writer (used when it is idle)."""
        self._flush = flush

    # --- event loop ------------------------------------------------------------------------

    def sent(self, mid: int, history_ids: tuple[int, ...]) -> None:
        """A publish carrying ``history_ids`` was queued in paho as message ``mid``."""
        if not history_ids:
            return
        earlier = self._inflight.get(mid)
        if earlier is not None:  # 65535 publishes later paho reuses a mid still unanswered
            log.warning("delivery.mid_reused", mid=mid, unconfirmed=len(earlier))
        self._inflight[mid] = history_ids
        self._settled.clear()

    def confirmed(self, mid: int) -> None:
        """The broker acknowledged message ``mid`` (PUBACK)."""
        ids = self._inflight.pop(mid, None)
        if not self._inflight:
            self._settled.set()
        if not ids:
            return
        with self._lock:
            self._confirmed.extend(ids)
        if self._timer is None and self._flush is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._idle_flush_s, self._idle_flush)

    @property
    def unanswered(self) -> int:
        """Publishes still waiting for their PUBACK."""
        return len(self._inflight)

    async def settled(self) -> None:
        """Return once every tracked publish was acknowledged."""
        await self._settled.wait()

    def _idle_flush(self) -> None:
        self._timer = None
        with self._lock:
            waiting = bool(self._confirmed)
        if waiting and self._flush is not None:
            self._flush()

    def cancel_timer(self) -> None:
        """Shutdown: no further idle flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- writer thread -------------------------------------------------------------------

    def write_confirmed(self, conn: Conn) -> int:
        """Mark the collected confirmations in the caller's transaction; the rows marked."""
        with self._lock:
            ids, self._confirmed = self._confirmed, []
        if not ids:
            return 0
        try:
            marked = ledger.confirm_published(conn, ids, self._clock())
        except Exception:
            with self._lock:  # try again with the next commit
                self._confirmed[:0] = ids
            raise
        self.written += marked
        return marked
