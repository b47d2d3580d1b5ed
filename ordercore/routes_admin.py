"""Catalog, webhook subscriptions and the OpenAPI document (health: ``ordercore.health``)."""

from __future__ import annotations

import secrets
from functools import partial
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edgeorder.ordercore.catalog import SkuIn
from edgeorder.ordercore.core import CORE
from edgeorder.ordercore.endpoints import ALL_ROLES, Call, Endpoint, Reply
from edgeorder.ordercore.errors import ApiError, FieldError
from edgeorder.ordercore.filters import PageQuery
from edgeorder.ordercore.http import json_response
from edgeorder.ordercore.lifecycle import EVENT_NAMES
from edgeorder.ordercore.principals import Role
from edgeorder.ordercore.schemas import (
    ErrorOut,
    SkuOut,
    SkuPage,
    WebhookOut,
    WebhookPage,
)
from edgeorder.ordercore.store import catalog as catalog_store
from edgeorder.ordercore.store import webhooks as webhook_store
from edgeorder.ordercore.targets import refused_target
from edgeorder.ordercore.views import paged

__all__ = ["ENDPOINTS", "EVENT_NAMES", "WebhookIn"]

HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
PORT = (
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}"
    r"|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
)
URL_PATTERN = rf"^https?://{HOST}{PORT}(?:[/?#][!-~]*)?$"
"""An absolute http(s) URL of visible ASCII: a host name or [IPv6], a port in range."""

EventName = Literal[("*", *EVENT_NAMES)]  # type: ignore[valid-type]
"""An event name, or ``*`` for every event."""


class WebhookIn(BaseModel):
    """Body of ``POST /api/webhooks``. A subscription receives the events of the orders its
    token's principal sees (an admin's: every order)."""

    model_config = ConfigDict(extra="ignore")

    Url: Annotated[str, Field(max_length=2000, pattern=URL_PATTERN)]
    Events: Annotated[
        list[EventName],
        Field(min_length=1, description="event names, or '*' for every event"),
    ]
    Secret: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=200,
            description="HMAC key of X-Edgeorder-Signature; generated (and answered once) "
            "when absent",
        ),
    ] = None


async def openapi(call: Call[Any, Any]) -> web.Response:
    """GET /api/openapi.json."""
    from edgeorder.ordercore.openapi import openapi_json

    return json_response(openapi_json())


async def list_skus(call: Call[Any, PageQuery]) -> web.Response:
    """GET /api/sku (paged)."""
    paging = call.the_query()
    skus = call.request.app[CORE].catalog.all()
    page = skus[paging.offset : paging.offset + paging.page_size]
    data = [s.to_json() for s in page]
    return json_response(paged(len(skus), paging.page_size, paging.page_index, data))


async def create_sku(call: Call[SkuIn, Any]) -> web.Response:
    """POST /api/sku: 201 with the SKU; 409 if its Sku or SkuId exists."""
    core = call.request.app[CORE]
    sku_in = call.the_body()
    if call.who.role is Role.MERCHANT and sku_in.MerchantId != call.who.scope:
        raise ApiError.forbidden("a merchant token adds SKUs of its own MerchantId only")
    sku = await core.writer.run(partial(catalog_store.create_sku, sku=sku_in))
    core.catalog.put(sku)
    return json_response(sku.to_json(), 201)


async def create_webhook(call: Call[WebhookIn, Any]) -> web.Response:
    """POST /api/webhooks: 201 {Id, Url, Events} (+ Secret when the server made it up)."""
    core = call.request.app[CORE]
    hook = call.the_body()
    refused = refused_target(hook.Url)
    if refused is not None:
        raise ApiError.unprocessable([FieldError("Url", refused)])
    secret = hook.Secret or secrets.token_hex(32)
    add = partial(
        webhook_store.add_webhook,
        url=hook.Url,
        events=list(dict.fromkeys(hook.Events)),
        secret=secret,
        now=core.clock(),
        principal=call.who,
    )
    created = await core.writer.run(add)
    if hook.Secret is None:
        created["Secret"] = secret
    return json_response(created, 201)


async def list_webhooks(call: Call[Any, Any]) -> web.Response:
    """GET /api/webhooks: the token's own subscriptions (an admin's: all)."""
    read = partial(webhook_store.list_webhooks, principal=call.who)
    hooks = await call.request.app[CORE].reader.run(read)
    return json_response(paged(len(hooks), len(hooks), 1, hooks))


async def delete_webhook(call: Call[Any, Any]) -> web.Response:
    """DELETE /api/webhooks/{id}: 204; pending deliveries are dropped."""
    delete = partial(webhook_store.delete_webhook, webhook_id=call.id, principal=call.who)
    await call.request.app[CORE].writer.run(delete)
    return web.Response(status=204)


SKU_WRITERS = frozenset({Role.ADMIN, Role.MERCHANT})
SUBSCRIBERS = frozenset({Role.ADMIN, Role.MERCHANT, Role.APP})
"""Who may subscribe to webhooks: integrations, not a buyer's token (the order core then POSTs
wherever the subscriber says: a customer could have it call addresses inside its network)."""


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/openapi.json",
        openapi,
        "this document (no token)",
        (Reply(200, None, "OpenAPI 3.1", json=True),),
        roles=None,
        tag="service",
    ),
    Endpoint(
        "GET",
        "/api/sku",
        list_skus,
        "the catalog (paged)",
        (Reply(200, SkuPage, "a page of SKUs"),),
        query=PageQuery,
        tag="catalog",
    ),
    Endpoint(
        "POST",
        "/api/sku",
        create_sku,
        "add a SKU (a merchant: of its own MerchantId)",
        (
            Reply(201, SkuOut, "the new SKU"),
            Reply(409, ErrorOut, "sku_exists: its Sku or SkuId is taken"),
            Reply(422, ErrorOut, "unprocessable: MerchantName is required for a new merchant"),
        ),
        roles=SKU_WRITERS,
        body=SkuIn,
        tag="catalog",
    ),
    Endpoint(
        "GET",
        "/api/webhooks",
        list_webhooks,
        "the token's webhook subscriptions (an admin's: all)",
        (Reply(200, WebhookPage, "every subscription, one page"),),
        roles=ALL_ROLES,
        tag="webhooks",
    ),
    Endpoint(
        "POST",
        "/api/webhooks",
        create_webhook,
        "subscribe to order events of the orders the token sees (admin, merchant or app)",
        (
            Reply(201, WebhookOut, "the subscription"),
            Reply(422, ErrorOut, "unprocessable: a link-local or unspecified target address"),
        ),
        roles=SUBSCRIBERS,
        body=WebhookIn,
        tag="webhooks",
    ),
    Endpoint(
        "DELETE",
        "/api/webhooks/{id}",
        delete_webhook,
        "unsubscribe; undelivered events are dropped",
        (
            Reply(204, None, "deleted"),
            Reply(404, ErrorOut, "no such subscription of the token's"),
        ),
        tag="webhooks",
    ),
]
