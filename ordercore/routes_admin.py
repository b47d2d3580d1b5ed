"""Catalog, webhook subscriptions and the OpenAPI document (health: ``ordercore.health``)."""

from __future__ import annotations

import secrets
from functools import partial
from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from yarl import URL

from edgeorder.ordercore.catalog import SkuIn
from edgeorder.ordercore.checkout import field_errors
from edgeorder.ordercore.core import CORE
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.filters import parse_paging
from edgeorder.ordercore.http import json_response, path_id, read_json
from edgeorder.ordercore.lifecycle import EVENTS
from edgeorder.ordercore.openapi import openapi_document
from edgeorder.ordercore.store import catalog as catalog_store
from edgeorder.ordercore.store import webhooks as webhook_store
from edgeorder.ordercore.views import paged

__all__ = ["EVENT_NAMES", "add_routes"]

EVENT_NAMES: tuple[str, ...] = ("order/created", *EVENTS.values())
M = TypeVar("M", bound=BaseModel)


def _http_url(value: str) -> str:
    url = URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http(s) URL")
    return value


def _events(value: list[str]) -> list[str]:
    unknown = [e for e in value if e != "*" and e not in EVENT_NAMES]
    if unknown:
        raise ValueError(f"unknown events {unknown}; use '*' or {list(EVENT_NAMES)}")
    return list(dict.fromkeys(value))


class WebhookIn(BaseModel):
    """Body of ``POST /api/webhooks``."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    Url: Annotated[str, Field(max_length=2000), AfterValidator(_http_url)]
    Events: Annotated[list[str], Field(min_length=1), AfterValidator(_events)]
    Secret: Annotated[str | None, Field(min_length=1, max_length=200)] = None


def _validate(model: type[M], body: object) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError.validation(field_errors(exc)) from exc


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return json_response(openapi_document())


async def list_skus(request: web.Request) -> web.Response:
    """GET /api/sku (paged)."""
    paging = parse_paging(request.query)
    skus = request.app[CORE].catalog.all()
    page = skus[paging.offset : paging.offset + paging.page_size]
    data = [s.to_json() for s in page]
    return json_response(paged(len(skus), paging.page_size, paging.page_index, data))


async def create_sku(request: web.Request) -> web.Response:
    """POST /api/sku: 201 with the SKU; 409 if its Sku or SkuId exists."""
    core = request.app[CORE]
    sku_in = _validate(SkuIn, await read_json(request))
    sku = await core.writer.run(partial(catalog_store.create_sku, sku=sku_in))
    core.catalog.put(sku)
    return json_response(sku.to_json(), 201)


async def create_webhook(request: web.Request) -> web.Response:
    """POST /api/webhooks: 201 {Id, Url, Events} (+ Secret when the server made it up)."""
    core = request.app[CORE]
    hook = _validate(WebhookIn, await read_json(request))
    secret = hook.Secret or secrets.token_hex(32)
    add = partial(
        webhook_store.add_webhook, url=hook.Url, events=hook.Events, secret=secret, now=core.clock()
    )
    created = await core.writer.run(add)
    if hook.Secret is None:
        created["Secret"] = secret
    return json_response(created, 201)


async def list_webhooks(request: web.Request) -> web.Response:
    """GET /api/webhooks."""
    hooks = await request.app[CORE].reader.run(webhook_store.list_webhooks)
    return json_response(paged(len(hooks), len(hooks), 1, hooks))


async def delete_webhook(request: web.Request) -> web.Response:
    """DELETE /api/webhooks/{id}: 204; pending deliveries are dropped."""
    webhook_id = path_id(request)
    await request.app[CORE].writer.run(partial(webhook_store.delete_webhook, webhook_id=webhook_id))
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/openapi.json", openapi, allow_head=False)
    router.add_get("/api/sku", list_skus, allow_head=False)
    router.add_post("/api/sku", create_sku)
    router.add_get("/api/webhooks", list_webhooks, allow_head=False)
    router.add_post("/api/webhooks", create_webhook)
    router.add_delete(r"/api/webhooks/{id:\d+}", delete_webhook)
