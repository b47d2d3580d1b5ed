"""Checkout (single and batch), order queries, lifecycle actions, updates, edits, histories."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeorder.ordercore.changes import CancelIn, CaptureIn, EditIn, OrderUpdateIn
from edgeorder.ordercore.checkout import CheckoutIn, body_hash, price_checkout
from edgeorder.ordercore.core import CORE, Core
from edgeorder.ordercore.endpoints import ALL_ROLES, Call, Endpoint, Reply
from edgeorder.ordercore.errors import ApiError, FieldError, field_errors
from edgeorder.ordercore.fields import IDEMPOTENCY_KEY, MAX_KEY_LENGTH
from edgeorder.ordercore.filters import OrderQuery, order_filter
from edgeorder.ordercore.http import json_response
from edgeorder.ordercore.lifecycle import ACTIONS, EVENTS, Action
from edgeorder.ordercore.principals import BUYER_ROLES, Principal, Role
from edgeorder.ordercore.schemas import (
    BatchOut,
    CheckoutOut,
    EditOut,
    ErrorOut,
    HistoryOut,
    OrderOut,
    OrderPage,
    ValueOut,
)
from edgeorder.ordercore.store import changes as store_changes
from edgeorder.ordercore.store import orders as store
from edgeorder.ordercore.store.changes import ActionRequest
from edgeorder.ordercore.store.orders import StoredResponse
from edgeorder.ordercore.views import dumps

__all__ = ["ENDPOINTS", "MAX_BATCH", "BatchIn", "BatchItemIn"]

log = structlog.get_logger("ordercore.routes")

MAX_BATCH = 100
_INTERNAL = StoredResponse(500, dumps({"Error": "internal", "Message": "internal error"}))
SELLERS = frozenset({Role.ADMIN, Role.MERCHANT})
BUYERS = frozenset({Role.ADMIN, Role.CUSTOMER, Role.APP})
REPLAYED = (("Idempotent-Replayed", "true when the answer replays an earlier request"),)


def _stored_response(result: StoredResponse) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(result.body, result.status, headers)


def _as_buyer(principal: Principal, req: CheckoutIn) -> CheckoutIn:
    """A customer checks out as itself: its UserId is filled in, another one is 403."""
    if principal.role is not Role.CUSTOMER:
        return req
    given = req.Customer.UserId
    if given is not None and given != principal.scope:
        raise ApiError.forbidden("a customer token checks out only as its own Customer.UserId")
    customer = req.Customer.model_copy(update={"UserId": principal.scope})
    return req.model_copy(update={"Customer": customer})


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A checkout body checked against the catalog: the write to run, or why it cannot run."""

    key: str | None
    digest: str
    write: Callable[[sqlite3.Connection], StoredResponse] | None = None
    error: ApiError | None = None
    orders: int = 0  # the orders the write creates (one per merchant)


def _prepare(core: Core, principal: Principal, body: Any, key: str | None) -> _Attempt:
    """Parse, authorize and price one checkout body (pure, on the loop: catalog in memory)."""
    try:
        parsed = core.checkouts.parse(body)
    except ApiError as exc:
        return _Attempt(key, body_hash(body) if key is not None else "", error=exc)
    digest = parsed.digest if key is not None else ""
    try:
        req = _as_buyer(principal, parsed.req)
        drafts = price_checkout(req, core.catalog)
    except ApiError as exc:
        return _Attempt(key, digest, error=exc)
    create = partial(
        store.create_checkout,
        req=req,
        drafts=drafts,
        principal=principal,
        now=core.clock(),
        key=key,
        body_hash=digest,
        parts=parsed.parts if req is parsed.req else None,  # a buyer's own copy: its own
    )
    return _Attempt(key, digest, write=create, orders=len(drafts))


Lookup = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


async def _run(
    core: Core, principal: Principal, attempt: _Attempt, lookup: Lookup
) -> StoredResponse:
    """The answer of ``POST /api/checkout`` for a prepared body; raises its ApiError.

    ``lookup`` runs the replay check of a body that did not validate: the reader for a single
    request, the writer inside a batch (so it sees the batch's earlier items in order).
    """
    if attempt.error is not None:
        # A retry of an accepted request must replay even if the catalog changed since.
        if attempt.key is not None:
            check = partial(
                store.idempotent_replay,
                principal=principal,
                key=attempt.key,
                body_hash=attempt.digest,
            )
            replay: StoredResponse | None = await lookup(check)
            if replay is not None:
                core.metrics.checkout(replayed=True, status=replay.status, orders=0)
                return replay
        raise attempt.error
    assert attempt.write is not None
    result = await core.writer.run(attempt.write)
    core.metrics.checkout(replayed=result.replayed, status=result.status, orders=attempt.orders)
    core.dispatcher.notify(result.notify)
    return result


async def checkout(call: Call[Any, Any]) -> web.Response:
    """POST /api/checkout: one order per merchant, exactly once per Idempotency-Key."""
    core = call.request.app[CORE]
    attempt = _prepare(core, call.who, call.raw_body, call.key)
    return _stored_response(await _run(core, call.who, attempt, core.reader.run))


class BatchItemIn(BaseModel):
    """One item of ``POST /api/checkouts``: a checkout body and its optional key.

    Both are checked per item, so a bad one fails its item only (its result says why).
    """

    model_config = ConfigDict(extra="ignore")

    IdempotencyKey: Any = Field(
        None,
        description=f"null, or the item's Idempotency-Key (1-{MAX_KEY_LENGTH} visible ASCII, "
        "spaces only inside); anything else fails the item with 400",
    )
    Checkout: dict[str, Any] = Field(
        description="a POST /api/checkout body (schema CheckoutIn); one that breaks it fails "
        "the item with 400"
    )


class BatchIn(BaseModel):
    """Body of ``POST /api/checkouts``."""

    model_config = ConfigDict(extra="ignore")

    Checkouts: Annotated[list[BatchItemIn], Field(min_length=1, max_length=MAX_BATCH)]


def _error_result(exc: ApiError) -> StoredResponse:
    return StoredResponse(exc.status, dumps(exc.to_json()))


def _prepare_item(core: Core, principal: Principal, item: BatchItemIn) -> _Attempt | StoredResponse:
    key = item.IdempotencyKey
    if key is not None:
        try:
            key = IDEMPOTENCY_KEY.validate_python(key, strict=True)
        except ValidationError as exc:
            return _error_result(
                ApiError(
                    400,
                    "bad_request",
                    f"IdempotencyKey must be null or 1-{MAX_KEY_LENGTH} visible ASCII characters",
                    [FieldError("IdempotencyKey", f.reason) for f in field_errors(exc)],
                )
            )
    return _prepare(core, principal, item.Checkout, key)


async def _answer(
    core: Core, principal: Principal, index: int, attempt: _Attempt | StoredResponse
) -> StoredResponse:
    """One item's answer; its error (even an unexpected one) stays its own."""
    if isinstance(attempt, StoredResponse):
        result = attempt
    else:
        try:
            result = await _run(core, principal, attempt, core.writer.run)
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


async def checkouts(call: Call[BatchIn, Any]) -> web.Response:
    """POST /api/checkouts: up to MAX_BATCH checkouts, each answered as POST /api/checkout.

    Every item is parsed first, then all writes are submitted together so they land in one
    group commit, in request order; a write that fails fails alone.
    """
    core = call.request.app[CORE]
    attempts = [_prepare_item(core, call.who, item) for item in call.the_body().Checkouts]
    results = await asyncio.gather(*(_answer(core, call.who, i, a) for i, a in enumerate(attempts)))
    return json_response(_batch_json(results))


async def get_order(call: Call[Any, Any]) -> web.Response:
    """GET /api/order/{sent,received}/{id} (the endpoint's roles pick the perspective)."""
    get = partial(store.get_order, order_id=call.id, principal=call.who)
    return json_response(await call.request.app[CORE].reader.run(get))


async def list_orders(call: Call[Any, OrderQuery]) -> web.Response:
    """GET /api/order/{sent,received}: the seed's filters and Nuvemshop's, within the scope."""
    f = order_filter(call.the_query(), call.who.order_column)
    return json_response(await call.request.app[CORE].reader.run(partial(store.list_orders, f=f)))


def _history_handler(
    read: Callable[..., list[dict[str, Any]]],
) -> Callable[[Call[Any, Any]], Awaitable[web.Response]]:
    async def handle(call: Call[Any, Any]) -> web.Response:
        rows = await call.request.app[CORE].reader.run(
            partial(read, order_id=call.id, principal=call.who)
        )
        return json_response(rows)

    handle.__name__ = read.__name__
    return handle


def _cancel_request(who: Principal, cancel: CancelIn) -> ActionRequest:
    """A buyer's token (customer, app) cancels as the user and leaves the flags to the
    merchant; a seller's token cancels as the merchant unless it says By: user."""
    buyer = who.role in BUYER_ROLES
    if buyer and (
        cancel.By == "merchant" or cancel.Restock is not None or cancel.NotifyCustomer is not None
    ):
        raise ApiError.forbidden(
            "a buyer's token cancels By: user and may not set Restock or NotifyCustomer"
        )
    return ActionRequest(
        Action.CANCEL,
        cancel_reason=cancel.Reason,
        cancelled_by=cancel.By or ("user" if buyer else "merchant"),
        restock=True if cancel.Restock is None else cancel.Restock,
        notify=True if cancel.NotifyCustomer is None else cancel.NotifyCustomer,
    )


def _action_request(action: Action, who: Principal, body: BaseModel | None) -> ActionRequest:
    if isinstance(body, CancelIn):
        return _cancel_request(who, body)
    if isinstance(body, CaptureIn):
        return ActionRequest(
            action, gateway_method=body.GatewayMethod, gateway_name=body.GatewayName
        )
    return ActionRequest(action)


def action_handler(action: Action) -> Callable[[Call[Any, Any]], Awaitable[web.Response]]:
    """The handler of ``POST /api/order/{id}/<action>``: 200 with the updated Order.

    An ``Idempotency-Key`` makes a retried action replay its first answer.
    """

    async def handle(call: Call[Any, Any]) -> web.Response:
        core = call.request.app[CORE]
        change = partial(
            store_changes.transition,
            order_id=call.id,
            req=_action_request(action, call.who, call.body),
            principal=call.who,
            now=core.clock(),
            key=call.key,
            body_hash=body_hash(call.raw_body) if call.key is not None else "",
        )
        result = await core.writer.run(change)
        core.dispatcher.notify(result.notify)
        return _stored_response(result)

    handle.__name__ = f"order_{action.value}"
    return handle


async def update_order(call: Call[OrderUpdateIn, Any]) -> web.Response:
    """PUT /api/order/{id}: owner note, buyer data; 200 with the Order."""
    core = call.request.app[CORE]
    change = partial(
        store_changes.update_order,
        order_id=call.id,
        upd=call.the_body(),
        principal=call.who,
        now=core.clock(),
    )
    result = await core.writer.run(change)
    core.dispatcher.notify(result.notify)
    return _stored_response(result)


async def edit_order(call: Call[EditIn, Any]) -> web.Response:
    """POST /api/order/{id}/edit: change line quantities / add lines before payment."""
    core = call.request.app[CORE]
    change = partial(
        store_changes.edit_order,
        order_id=call.id,
        edit=call.the_body(),
        catalog=core.catalog,
        principal=call.who,
        now=core.clock(),
        key=call.key,
        body_hash=body_hash(call.raw_body) if call.key is not None else "",
    )
    result = await core.writer.run(change)
    core.dispatcher.notify(result.notify)
    return _stored_response(result)


def _r(status: int, model: type[BaseModel] | None, text: str, **kw: Any) -> Reply:
    return Reply(status, model, text, **kw)


NOT_FOUND = _r(404, ErrorOut, "no such order in the token's scope")
ILLEGAL = _r(409, ErrorOut, "illegal_transition: not allowed in the order's state (Status, Closed)")
KEY_CONFLICT = "idempotency_conflict: this key was used with another body"
_ACTION_TEXT = {
    Action.AUTHORIZE: "authorize the payment: 0 -> 1",
    Action.CAPTURE: "capture the payment: 0, 1 -> 2; settles the pending value (PaidOn)",
    Action.DENY: "deny the payment: 0, 1 -> 20",
    Action.SHIP: "ship: 0, 1, 2 -> 5 (unpaid: cash on delivery)",
    Action.COMPLETE: "complete: 5 -> 10 (an unpaid order is paid now, in cash)",
    Action.CANCEL: "cancel: 0, 1, 2 -> 21 (By merchant) or 22 (By user); refunds a paid order",
    Action.CLOSE: "close (archive): status kept, ClosedOn set; not for cancelled orders",
    Action.REOPEN: "reopen a closed order",
}
_ACTION_BODY: dict[Action, type[BaseModel]] = {Action.CANCEL: CancelIn, Action.CAPTURE: CaptureIn}


def _action_endpoint(action: Action) -> Endpoint:
    body = _ACTION_BODY.get(action)
    return Endpoint(
        "POST",
        f"/api/order/{{id}}/{action.value}",
        action_handler(action),
        f"{_ACTION_TEXT[action]}; event {EVENTS[action]}",
        (
            _r(200, OrderOut, "the order after the action", headers=REPLAYED),
            NOT_FOUND,
            ILLEGAL,
            _r(422, ErrorOut, KEY_CONFLICT),
            *(
                [
                    _r(
                        403,
                        ErrorOut,
                        "a buyer's token asking to cancel By merchant or to set "
                        "Restock / NotifyCustomer",
                    )
                ]
                if action is Action.CANCEL
                else []
            ),
        ),
        roles=ALL_ROLES if action is Action.CANCEL else SELLERS,
        body=body,
        body_required=False,
        idempotency_key=True,
        description="A retry with the same Idempotency-Key replays the first 200 instead of "
        "answering 409." + (" " + (body.__doc__ or "") if body is not None else ""),
        tag="lifecycle",
    )


def _side_endpoints(side: str, who: str) -> list[Endpoint]:
    page = Endpoint(
        "GET",
        f"/api/order/{side}",
        list_orders,
        f"orders {who} (paged, filtered, within the token's scope)",
        (_r(200, OrderPage, "a page of orders"),),
        roles=BUYERS if side == "sent" else SELLERS,
        query=OrderQuery,
    )
    slash = Endpoint(
        "GET",
        f"/api/order/{side}/",
        list_orders,
        f"the same as /api/order/{side} (the seed's own examples end in a slash)",
        page.replies,
        roles=page.roles,
        query=OrderQuery,
    )
    one = Endpoint(
        "GET",
        f"/api/order/{side}/{{id}}",
        get_order,
        f"one order {who}",
        (_r(200, OrderOut, "the order"), NOT_FOUND),
        roles=page.roles,
    )
    return [page, slash, one]


def _history_endpoints() -> list[Endpoint]:
    return [
        Endpoint(
            "GET",
            "/api/order/{id}/history",
            _history_handler(store.order_history),
            "every change of every field, oldest first",
            (_r(200, HistoryOut, "the field history", many=True), NOT_FOUND),
            tag="history",
        ),
        Endpoint(
            "GET",
            "/api/order/{id}/history/values",
            _history_handler(store_changes.order_values),
            "changes of the order's total: pending, cancelled, paid, refunds (Nuvemshop)",
            (_r(200, ValueOut, "the values history", many=True), NOT_FOUND),
            tag="history",
        ),
        Endpoint(
            "GET",
            "/api/order/{id}/history/edits",
            _history_handler(store_changes.order_edits),
            "edits of the order's lines with the value change each made (Nuvemshop)",
            (_r(200, EditOut, "the edits history", many=True), NOT_FOUND),
            tag="history",
        ),
    ]


def _endpoints() -> list[Endpoint]:
    bad_buyer = _r(403, ErrorOut, "a customer token checking out as another UserId")
    eps = [
        Endpoint(
            "POST",
            "/api/checkout",
            checkout,
            "checkout: one order per merchant of the items, exactly once per Idempotency-Key",
            (
                _r(201, CheckoutOut, "the checkout and its orders", headers=REPLAYED),
                bad_buyer,
                _r(
                    422,
                    ErrorOut,
                    "unprocessable: unknown SKU, another currency or merchant; " + KEY_CONFLICT,
                ),
            ),
            roles=BUYERS,
            body=CheckoutIn,
            idempotency_key=True,
            tag="checkout",
        ),
        Endpoint(
            "POST",
            "/api/checkouts",
            checkouts,
            f"batch checkout: 1..{MAX_BATCH} checkouts, each answered as POST /api/checkout",
            (_r(200, BatchOut, "one result per item, in request order"),),
            roles=BUYERS,
            body=BatchIn,
            description="Every item gets exactly the Status and Body that POST /api/checkout "
            "with its Checkout body and IdempotencyKey would answer (keys are shared with it, "
            "so either endpoint replays the other). The valid items are written in one group "
            "commit; a failing item fails alone. A bad envelope fails the whole request and "
            "writes nothing.",
            tag="checkout",
        ),
    ]
    eps += _side_endpoints("sent", "sent by the buyer (customer: its own; app: its orders)")
    eps += _side_endpoints("received", "received by the seller (merchant: its own)")
    eps.append(
        Endpoint(
            "PUT",
            "/api/order/{id}",
            update_order,
            "update the owner note and the buyer's data; event order/updated",
            (_r(200, OrderOut, "the order after the update"), NOT_FOUND, ILLEGAL),
            roles=SELLERS,
            body=OrderUpdateIn,
            description=OrderUpdateIn.__doc__ or "",
            tag="lifecycle",
        )
    )
    eps.append(
        Endpoint(
            "POST",
            "/api/order/{id}/edit",
            edit_order,
            "edit the lines before payment; event order/edited",
            (
                _r(200, OrderOut, "the order after the edit", headers=REPLAYED),
                NOT_FOUND,
                ILLEGAL,
                _r(
                    422,
                    ErrorOut,
                    "unprocessable: unknown line or SKU, another merchant or "
                    "currency, no line left; " + KEY_CONFLICT,
                ),
            ),
            roles=SELLERS,
            body=EditIn,
            idempotency_key=True,
            tag="lifecycle",
        )
    )
    eps += _history_endpoints()
    eps += [_action_endpoint(action) for action in ACTIONS]
    return eps


ENDPOINTS: list[Endpoint] = _endpoints()
