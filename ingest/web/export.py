"""``GET /api/events.csv`` and ``GET /api/orders.csv``: every event or order, of one device
or all, in a time window, as a CSV download.

Streamed: the rows are read in keyset batches (``ingest.store.history``), each on the reader
pool and written out before the next is read, so an export of millions of rows holds one
batch in memory and no reader connection while the client reads. Cells are made safe for
spreadsheets by ``ingest.domain.csv_export``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from aiohttp import web

from edgeorder.ingest.domain.csv_export import csv_rows
from edgeorder.ingest.store.history import (
    EVENT_EXPORT_COLUMNS,
    ORDER_EXPORT_COLUMNS,
    Window,
    event_export_batch,
    order_export_batch,
)
from edgeorder.ingest.web import api_models as m
from edgeorder.ingest.web.openapi import Operation, Reply, query_of
from edgeorder.ingest.web.state import STORE_KEY
from edgeorder.protocol import format_ts, utcnow

__all__ = ["BATCH_ROWS", "EXPORT_OPERATIONS"]

BATCH_ROWS = 1000
"""Rows read per batch (one reader-pool call, one write to the client)."""

Batch = Callable[..., list[dict[str, Any]]]


def _filename(kind: str, q: m.ExportQuery) -> str:
    device = f"-{q.device}" if q.device else ""  # DEVICE_ID_PATTERN: safe in a header
    return f"edgeorder-{kind}{device}-{format_ts(utcnow())[:10]}.csv"


async def _stream(
    request: web.Request,
    kind: str,
    columns: Sequence[str],
    batch: Batch,
    cursor_of: Callable[[dict[str, Any]], tuple[Any, Any]],
) -> web.StreamResponse:
    q = query_of(request, m.ExportQuery)
    window = Window(q.device, q.start, q.end)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{_filename(kind, q)}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await resp.prepare(request)
    await resp.write(csv_rows(columns, [], header=True).encode())
    cursor = None
    while True:
        rows = await request.app[STORE_KEY].read(
            partial(batch, window=window, cursor=cursor, n=BATCH_ROWS)
        )
        if rows:
            await resp.write(csv_rows(columns, rows, header=False).encode())
        if len(rows) < BATCH_ROWS:
            break
        cursor = cursor_of(rows[-1])
    await resp.write_eof()
    return resp


async def events_csv(request: web.Request) -> web.StreamResponse:
    return await _stream(
        request,
        "events",
        EVENT_EXPORT_COLUMNS,
        event_export_batch,
        lambda row: (row["received_at"], row["id"]),
    )


async def orders_csv(request: web.Request) -> web.StreamResponse:
    return await _stream(
        request,
        "orders",
        ORDER_EXPORT_COLUMNS,
        order_export_batch,
        lambda row: (row["created_at"], row["order_id"]),
    )


_CSV_NOTE = (
    "Streamed CSV (RFC 4180, UTF-8, header row), oldest first; `from`/`to`: ISO-8601 date or "
    "time (UTC unless it says otherwise), `to` excluded. Text cells that start with `=`, `+`, "
    "`-`, `@`, a tab or CR get a leading `'` so spreadsheets show them as text."
)

EXPORT_OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/api/events.csv",
        events_csv,
        "events as CSV (one device, or all; a time window)",
        (Reply(200, None, "the events", media="text/csv"),),
        query=m.ExportQuery,
        description=_CSV_NOTE + f" Columns: {', '.join(EVENT_EXPORT_COLUMNS)}.",
        tag="events",
    ),
    Operation(
        "GET",
        "/api/orders.csv",
        orders_csv,
        "orders as CSV (one device, or all; a time window)",
        (Reply(200, None, "the orders", media="text/csv"),),
        query=m.ExportQuery,
        description=_CSV_NOTE + f" Columns: {', '.join(ORDER_EXPORT_COLUMNS)}.",
        tag="orders",
    ),
]
