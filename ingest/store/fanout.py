"""Bus notices across the workers of one PostgreSQL ledger: LISTEN/NOTIFY.

Each worker has its own in-process ``Bus``; a dashboard's live view and the service's own
followers (device-cache reloads, outbox wake-ups) listen there. With several workers, the
change a notice announces may have been made by another one: ``Fanout`` sends what this
process publishes to the others (``pg_notify`` on one channel) and publishes theirs on the
local bus with their ``origin``.

What travels is what the listeners use: the kind, the device and, for registry and buffer
changes, their ``source`` -- never data to display (the pages re-read the database). Within a
flush interval notices are coalesced per (kind, device), so a flood of events costs a few
NOTIFYs a second, not one per status. A payload on the channel that is not ours is dropped and
logged. When the connection is lost, the worker reconnects with backoff and publishes a local
``resync`` (its listeners re-read what they show: notices may have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import structlog

from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.store import pg
from edgeorder.kit import backoff

__all__ = ["CHANNEL", "Fanout", "decode", "encode", "notify"]

log = structlog.get_logger(__name__)

CHANNEL = "edgeorder_notices"
KINDS = frozenset(
    {"event", "order", "rejection", "presence", "telemetry", "device", "outbox", "alert"}
)
"""What is sent to the other workers: everything a page or a follower reacts to. (A ``status``
always comes with one of these: an ``event`` from the router, an ``order`` or an ``outbox``.)"""
MAX_PAYLOAD = 7000
"""Bytes per NOTIFY (PostgreSQL's limit is 8000)."""
_KIND_MAX = 32
_FIELD_MAX = 200

Entry = tuple[str, str | None, str | None]
"""(kind, device_id, source)"""


def encode(origin: str, entries: list[Entry]) -> Iterator[str]:
    """NOTIFY payloads carrying ``entries``, each under ``MAX_PAYLOAD`` bytes."""
    chunk: list[Entry] = []
    size = 0
    for entry in entries:
        cost = len(json.dumps(entry)) + 1
        if chunk and size + cost > MAX_PAYLOAD - len(origin) - 20:
            yield json.dumps({"o": origin, "n": chunk}, separators=(",", ":"))
            chunk, size = [], 0
        chunk.append(entry)
        size += cost
    if chunk:
        yield json.dumps({"o": origin, "n": chunk}, separators=(",", ":"))


def decode(payload: str) -> tuple[str, list[Entry]]:
    """``(origin, entries)`` of a payload; ``ValueError`` for anything else."""
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("o"), str):
        raise ValueError("not a notice payload")
    entries = data.get("n")
    if not isinstance(entries, list):
        raise ValueError("no notices")
    return data["o"][:_FIELD_MAX], [_entry(e) for e in entries]


def _entry(raw: Any) -> Entry:
    if not isinstance(raw, list) or len(raw) != 3:
        raise ValueError("a notice is [kind, device_id, source]")
    kind, device_id, source = raw
    if not isinstance(kind, str) or not 0 < len(kind) <= _KIND_MAX:
        raise ValueError("bad kind")
    for value in (device_id, source):
        if value is not None and (not isinstance(value, str) or len(value) > _FIELD_MAX):
            raise ValueError("bad device_id or source")
    return kind, device_id, source


def notify(conn: Any, entries: list[Entry], *, origin: str) -> None:
    """Send ``entries`` to every worker from a tool's connection (``edgeorder device ...``);
    nothing on SQLite, where one ingest is all there is."""
    if not isinstance(conn, pg.PgConnection):
        return
    for payload in encode(origin, entries):
        conn.raw.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])


class Fanout:
    """Runs until cancelled: this worker's notices out, the others' in (module docstring)."""

    def __init__(
        self,
        url: str,
        bus: Bus,
        origin: str,
        *,
        flush_s: float = 0.1,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._url, self._bus, self._origin = url, bus, origin
        self._flush_s = flush_s
        self._backoff = (backoff_min_s, backoff_max_s)
        self._pending: dict[tuple[str, str | None], str | None] = {}
        self.listening = asyncio.Event()
        self.sent = self.received = self.dropped = 0

    async def run(self) -> None:

        delays = backoff.delays(*self._backoff)
        async with self._bus.subscribe(KINDS) as local:
            while True:
                try:
                    await self._session(local)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.listening.clear()
                    delay = next(delays)
                    log.warning("fanout.disconnected", error=str(exc), retry_in_s=round(delay, 2))
                    await asyncio.sleep(delay)  # a backoff period, not a readiness wait
                    self._bus.publish(Notice("resync"))  # what we show may be stale

    async def _session(self, local: asyncio.Queue[Notice]) -> None:
        psycopg = pg._psycopg()
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name=pg.APPLICATION_NAME, connect_timeout=10
        )
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            log.info("fanout.listening", channel=CHANNEL, origin=self._origin)
            while True:
                async for notify in conn.notifies(timeout=self._flush_s):
                    self._receive(notify.payload)
                self._collect(local)
                for payload in encode(self._origin, self._take()):
                    await conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
                    self.sent += 1

    def _collect(self, local: asyncio.Queue[Notice]) -> None:
        """This process's notices since the last flush, one per (kind, device)."""
        while not local.empty():
            notice = local.get_nowait()
            if notice.origin is not None:
                continue  # another worker's, published here by us: not sent back
            if notice.kind == "resync":  # we lost some of ours: the others re-read too
                self._pending[("resync", None)] = None
                continue
            source = notice.data.get("source")
            self._pending[(notice.kind, notice.device_id)] = (
                str(source)[:_FIELD_MAX] if source is not None else None
            )

    def _take(self) -> list[Entry]:
        entries = [(kind, device, source) for (kind, device), source in self._pending.items()]
        self._pending.clear()
        return entries

    def _receive(self, payload: str) -> None:
        try:
            origin, entries = decode(payload)
        except ValueError as exc:  # json.JSONDecodeError is one
            self.dropped += 1
            log.warning("fanout.payload_rejected", error=str(exc)[:200], size=len(payload))
            return
        if origin == self._origin:
            return  # our own NOTIFY, delivered to our LISTEN too
        for kind, device_id, source in entries:
            data = {} if source is None else {"source": source}
            self._bus.publish(Notice(kind, device_id, data, origin=origin))
            self.received += 1
