"""Checkout (single and batch), order queries, lifecycle actions and history."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeorder.ordercore.checkout import body_hash, field_errors, parse_checkout, price_checkout
from edgeorder.ordercore.core import CORE, Core
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.filters import parse_order_filter
from edgeorder.ordercore.http import json_response, path_id, read_json
from edgeorder.ordercore.lifecycle import ACTIONS, Action
from edgeorder.ordercore.store import orders as store
from edgeorder.ordercore.store.orders import StoredResponse
from edgeorder.ordercore.views import dumps

__all__ = ["MAX_BATCH", "BatchIn", "BatchItemIn", "add_routes"]

log = structlog.get_logger("ordercore.routes")

MAX_KEY_LENGTH = 255
MAX_BATCH = 100
_INTERNAL = StoredResponse(500, dumps({"Error": "internal", "Message": "internal error"}))


def _check_key(key: object) -> str | None:
    """An idempotency key as given (None = no key), or ApiError 400."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError.bad_request(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters"
        )
    return key


def _idempotency_key(request: web.Request) -> str | None:
    return _check_key(request.headers.get("Idempotency-Key"))


def _stored_response(result: StoredResponse) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(result.body, result.status, headers)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A checkout body checked against the catalog: the write to run, or why it cannot run."""

    key: str | None
    digest: str
    write: Callable[[sqlite3.Connection], StoredResponse] | None = None
    error: ApiError | None = None


def _prepare(core: Core, body: Any, key: str | None) -> _Attempt:
    """Parse and price one checkout body (pure, on the loop: the catalog is in memory)."""
    digest = body_hash(body) if key is not None else ""
    try:
        req = parse_checkout(body, core.catalog)
        drafts = price_checkout(req, core.catalog)
    except ApiError as exc:
        return _Attempt(key, digest, error=exc)
    create = partial(
        store.create_checkout, req=req, drafts=drafts, now=core.clock(), key=key, body_hash=digest
    )
    return _Attempt(key, digest, write=create)


Lookup = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


async def _run(core: Core, attempt: _Attempt, lookup: Lookup) -> StoredResponse:
    """The answer of ``POST /api/checkout`` for a prepared body; raises its ApiError.

    ``lookup`` runs the replay check of a body that did not validate: the reader for a single
    request, the writer inside a batch (so it sees the batch's earlier items in order).
    """
    if attempt.error is not None:
        # A retry of an accepted request must replay even if the catalog changed since.
        if attempt.key is not None:
            check = partial(store.idempotent_replay, key=attempt.key, body_hash=attempt.digest)
            replay: StoredResponse | None = await lookup(check)
            if replay is not None:
                return replay
        raise attempt.error
    assert attempt.write is not None
    result = await core.writer.run(attempt.write)
    core.dispatcher.notify(result.notify)
    return result


async def checkout(request: web.Request) -> web.Response:
    """POST /api/checkout: one order per merchant, exactly once per Idempotency-Key."""
    core = request.app[CORE]
    body = await read_json(request)
    attempt = _prepare(core, body, _idempotency_key(request))
    return _stored_response(await _run(core, attempt, core.reader.run))


class BatchItemIn(BaseModel):
    """One item of ``POST /api/checkouts``: a checkout body and its optional key."""

    model_config = ConfigDict(extra="ignore")

    IdempotencyKey: object = None  # checked per item by _check_key: a bad key fails its item
    Checkout: dict[str, Any]


class BatchIn(BaseModel):
    """Body of ``POST /api/checkouts``."""

    model_config = ConfigDict(extra="ignore")

    Checkouts: Annotated[list[BatchItemIn], Field(min_length=1, max_length=MAX_BATCH)]


def _prepare_item(core: Core, item: BatchItemIn) -> _Attempt | StoredResponse:
    try:
        key = _check_key(item.IdempotencyKey)
    except ApiError as exc:
        return _error_result(exc)
    return _prepare(core, item.Checkout, key)


def _error_result(exc: ApiError) -> StoredResponse:
    return StoredResponse(exc.status, dumps(exc.to_json()))


async def _answer(core: Core, index: int, attempt: _Attempt | StoredResponse) -> StoredResponse:
    """One item's answer; its error (even an unexpected one) stays its own."""
    if isinstance(attempt, StoredResponse):
        result = attempt
    else:
        try:
            result = await _run(core, attempt, core.writer.run)
        except ApiError as exc:
            result = _error_result(exc)
        except Exception:
            log.exception("batch_item_failed", item=index)
            return _INTERNAL
    if result.status >= 400:
        log.info("batch_item_rejected", item=index, status=result.status, body=result.body)
    return result


def _batch_json(results: list[StoredResponse]) -> str:
    """Splice the stored bodies (already JSON text) into the response without re-encoding."""
    parts = [
        f'{{"Status":{r.status:d},"Replayed":{"true" if r.replayed else "false"},"Body":{r.body}}}'
        for r in results
    ]
    return '{"Results":[' + ",".join(parts) + "]}"


async def checkouts(request: web.Request) -> web.Response:
    """POST /api/checkouts: up to MAX_BATCH checkouts, each answered as POST /api/checkout.

    Every item is parsed first, then all writes are submitted together so they land in one
    group commit, in request order; a write that fails fails alone.
    """
    core = request.app[CORE]
    try:
        batch = BatchIn.model_validate(await read_json(request))
    except ValidationError as exc:
        raise ApiError.validation(field_errors(exc)) from exc
    attempts = [_prepare_item(core, item) for item in batch.Checkouts]
    results = await asyncio.gather(*(_answer(core, i, a) for i, a in enumerate(attempts)))
    return json_response(_batch_json(results))


async def get_order(request: web.Request) -> web.Response:
    """GET /api/order/{sent,received}/{id}."""
    order_id = path_id(request)
    order = await request.app[CORE].reader.run(partial(store.get_order, order_id=order_id))
    return json_response(order)


async def list_orders(request: web.Request) -> web.Response:
    """GET /api/order/{sent,received} with the seed's filters plus ``device``."""
    f = parse_order_filter(request.query)
    return json_response(await request.app[CORE].reader.run(partial(store.list_orders, f=f)))


async def history(request: web.Request) -> web.Response:
    """GET /api/order/{id}/history."""
    order_id = path_id(request)
    rows = await request.app[CORE].reader.run(partial(store.order_history, order_id=order_id))
    return json_response(rows)


class CancelIn(BaseModel):
    """Body of ``POST /api/order/{id}/cancel`` (both fields optional)."""

    model_config = ConfigDict(extra="ignore")

    Reason: Annotated[
        Literal["customer", "fraud", "inventory", "other"], Field(description="why")
    ] = "other"
    By: Literal["merchant", "user"] = "merchant"


async def _action_body(request: web.Request, action: Action) -> tuple[Any, str | None, str]:
    """(body, cancel reason, cancelled by) of an action request; only cancel reads fields."""
    body = await read_json(request, optional=True)
    if action is not Action.CANCEL:
        return body, None, "merchant"
    try:
        cancel = CancelIn.model_validate(body)
    except ValidationError as exc:
        raise ApiError.validation(field_errors(exc)) from exc
    return body, cancel.Reason, cancel.By


def action_handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of ``POST /api/order/{id}/<action>``: 200 with the updated Order.

    An ``Idempotency-Key`` makes a retried action replay its first answer.
    """

    async def handle(request: web.Request) -> web.Response:
        core = request.app[CORE]
        order_id = path_id(request)
        body, reason, by = await _action_body(request, action)
        key = _idempotency_key(request)
        change = partial(
            store.transition,
            order_id=order_id,
            action=action,
            now=core.clock(),
            cancel_reason=reason,
            cancelled_by=by,
            key=key,
            body_hash=body_hash(body) if key is not None else "",
        )
        result = await core.writer.run(change)
        core.dispatcher.notify(result.notify)
        return _stored_response(result)

    handle.__name__ = f"order_{action.value}"
    return handle


ID = r"{id:\d+}"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/checkout", checkout)
    router.add_post("/api/checkouts", checkouts)
    for side in ("sent", "received"):
        router.add_get(f"/api/order/{side}", list_orders, allow_head=False)
        router.add_get(f"/api/order/{side}/{ID}", get_order, allow_head=False)
    router.add_get(f"/api/order/{ID}/history", history, allow_head=False)
    for action in ACTIONS:
        router.add_post(f"/api/order/{ID}/{action.value}", action_handler(action))
