"""Checkout, order queries, lifecycle actions and history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ordercore.checkout import body_hash, field_errors, parse_checkout, price_checkout
from ordercore.core import CORE
from ordercore.errors import ApiError
from ordercore.filters import parse_order_filter
from ordercore.http import json_response, path_id, read_json
from ordercore.lifecycle import ACTIONS, Action
from ordercore.store import orders as store

__all__ = ["add_routes"]

MAX_KEY_LENGTH = 255


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError.bad_request(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters"
        )
    return key


def _stored_response(result: store.StoredResponse) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(result.body, result.status, headers)


async def checkout(request: web.Request) -> web.Response:
    """POST /api/checkout: one order per merchant, exactly once per Idempotency-Key."""
    core = request.app[CORE]
    body = await read_json(request)
    key = _idempotency_key(request)
    digest = body_hash(body) if key is not None else ""
    try:
        req = parse_checkout(body, core.catalog)
        drafts = price_checkout(req, core.catalog)
    except ApiError:
        # A retry of an accepted request must replay even if the catalog changed since.
        if key is not None:
            replay = await core.reader.run(
                partial(store.idempotent_replay, key=key, body_hash=digest)
            )
            if replay is not None:
                return _stored_response(replay)
        raise
    create = partial(
        store.create_checkout, req=req, drafts=drafts, now=core.clock(), key=key, body_hash=digest
    )
    result = await core.writer.run(create)
    core.dispatcher.notify(result.notify)
    return _stored_response(result)


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
    for side in ("sent", "received"):
        router.add_get(f"/api/order/{side}", list_orders, allow_head=False)
        router.add_get(f"/api/order/{side}/{ID}", get_order, allow_head=False)
    router.add_get(f"/api/order/{ID}/history", history, allow_head=False)
    for action in ACTIONS:
        router.add_post(f"/api/order/{ID}/{action.value}", action_handler(action))
