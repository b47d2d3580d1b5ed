"""The JSON REST API under ``/api/``: devices, events, orders, the order buffer, OpenAPI.

Protected by the dashboard's auth middleware (``Authorization: Bearer <api token>``). Writes
go through the same registry/outbox functions the CLI and the dashboard use, as jobs of the
service's one writer, audited with the caller's name (the operator, or ``token:NAME``), then
tell the running service through the bus (``device``/``outbox`` notices). Reads run on the
service's reader pool; the SQL is in ``ingest.store``. Every route is an ``Operation``
(``ingest.web.openapi``): its inputs are validated by the models of ``api_models`` and
``GET /api/openapi.json`` is made from the same declarations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, partial
from typing import Any, TypeVar

from aiohttp import web

from edgeorder import __version__
from edgeorder import protocol as p
from edgeorder.ingest.bus import Notice
from edgeorder.ingest.domain.firmware import render_agent_toml
from edgeorder.ingest.errors import (
    BadRequestError,
    ConflictError,
    FailedDependencyError,
    NotFoundError,
)
from edgeorder.ingest.keys import ALERTS_KEY, BUS_KEY, CATALOG_KEY, SETTINGS_KEY
from edgeorder.ingest.orders import catalog, outbox
from edgeorder.ingest.store import alerts, groups, history, queries, registry
from edgeorder.ingest.store.bulk import BulkError, BulkRequest, apply_bulk
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.web import api_models as m
from edgeorder.ingest.web.access import identity_of
from edgeorder.ingest.web.announce import announce, announce_bulk
from edgeorder.ingest.web.broker_hooks import BROKER_OPERATIONS
from edgeorder.ingest.web.evendi_api import EVENDI_OPERATIONS
from edgeorder.ingest.web.export import EXPORT_OPERATIONS
from edgeorder.ingest.web.openapi import (
    Operation,
    Reply,
    api_errors_middleware,
    body_of,
    install_operations,
    query_of,
)
from edgeorder.ingest.web.openapi import openapi_document as make_document
from edgeorder.ingest.web.state import STORE_KEY

__all__ = ["OPERATIONS", "install_api", "openapi_document"]

T = TypeVar("T")
DeviceIn = m.DeviceIn
DevicePatch = m.DevicePatch


async def _registry_call(request: web.Request, fn: Callable[[Conn], T], *, write: bool = True) -> T:
    """``fn`` as a job of the service's writer (or, ``write=False``, on its reader pool)."""
    store = request.app[STORE_KEY]
    return await (store.write(fn) if write else store.read(fn))


async def _mutate(
    request: web.Request,
    fn: Callable[[Conn], T],
    device_id: str | None,
    *,
    config: bool = False,
) -> T:
    try:
        result: T = await _registry_call(request, fn)
    except registry.UnknownDeviceError as exc:
        raise NotFoundError(str(exc)) from exc
    except registry.DeviceExistsError as exc:
        raise ConflictError(str(exc), code="exists") from exc
    except registry.RegistryError as exc:
        raise BadRequestError(str(exc)) from exc
    configs = (device_id,) if config and device_id is not None else ()
    await announce(request, (device_id,), source="api", config_changed=configs)
    return result


def _actor(request: web.Request) -> str:
    """How the audit trail names the caller: the operator, or ``token:NAME``."""
    try:
        return identity_of(request).actor
    except KeyError:  # no auth middleware in front (an app without the dashboard)
        return "api"


# --- devices -----------------------------------------------------------------------------------


async def list_devices(request: web.Request) -> web.Response:
    q = query_of(request, m.DevicesQuery)
    read = partial(registry.list_devices, tag=q.tag, site=q.site)
    return web.json_response({"Data": await _registry_call(request, read, write=False)})


async def bulk(request: web.Request) -> web.Response:
    """One action on every listed device, or (400 ``bulk_failed``, with each failing
    device's reason) on none."""
    body = body_of(request, m.BulkIn)
    req = BulkRequest(body.action, tuple(body.device_ids), env=body.env, tag=body.tag)
    actor = _actor(request)
    try:
        done = await _registry_call(request, lambda db: apply_bulk(db, req, actor=actor))
    except BulkError as exc:
        devices = [{"device_id": d, "error": e} for d, e in exc.errors.items()]
        raise ConflictError(str(exc), code="bulk_failed", extra={"Devices": devices}) from exc
    except registry.RegistryError as exc:
        raise BadRequestError(str(exc)) from exc
    await announce_bulk(request, done, source="api")
    return web.json_response({"action": req.detail, "changed": done.changed})


async def get_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    try:
        return web.json_response(
            await _registry_call(
                request, lambda db: registry.get_device(db, device_id), write=False
            )
        )
    except registry.UnknownDeviceError as exc:
        raise NotFoundError(str(exc)) from exc


async def _check_skus(request: web.Request, mapping: p.ButtonMapping, allow: bool) -> None:
    """Refuse a mapping whose SKUs the platform does not sell (400 ``unknown_sku``) or
    cannot check now (424 Failed Dependency ``catalog_unavailable``: the read of the catalog
    it depends on failed; not a 5xx, ingest itself is fine), unless ``allow_unknown_sku``."""
    skus = request.app.get(CATALOG_KEY)
    if skus is None:  # an app without the service (tests of the API alone)
        return
    hint = "set allow_unknown_sku to save it unchecked"
    try:
        await skus.check(mapping, allow_unknown=allow)
    except catalog.UnknownSkuError as exc:
        raise BadRequestError(str(exc.hinted(hint)), code="unknown_sku") from exc
    except catalog.CatalogUnavailableError as exc:
        raise FailedDependencyError(str(exc.hinted(hint))) from exc


async def get_catalog(request: web.Request) -> web.Response:
    skus = request.app.get(CATALOG_KEY)
    if skus is None:
        raise NotFoundError("no order platform in this app")
    view = await skus.view()
    items = [{"sku": i.sku, "label": i.label} for i in view.items or ()]
    return web.json_response(
        {
            "platform": view.platform,
            "has_catalog": view.has_catalog,
            "available": view.items is not None,
            "source": view.source,
            "error": view.error,
            "Data": items,
        }
    )


async def add_device(request: web.Request) -> web.Response:
    body = body_of(request, m.DeviceIn)
    actor = _actor(request)
    await _check_skus(request, body.mapping, body.allow_unknown_sku)
    row, password = await _mutate(
        request,
        lambda db: registry.add_device(
            db,
            body.device_id,
            name=body.name,
            mapping=body.mapping,
            env="dev" if body.env == "dev" else "prod",
            allow_parallel=body.allow_parallel,
            cancel_window_s=body.cancel_window_s,
            profile=None if body.profile is None else body.profile.model_dump(exclude_unset=True),
            tags=body.tags,
            site=body.site,
            actor=actor,
        ),
        body.device_id,
        config=True,
    )
    settings = request.app[SETTINGS_KEY]
    toml = render_agent_toml(body.device_id, mqtt_url=settings.mqtt_url, password=password)
    return web.json_response(
        {"device": row, "password": password, "firmware_config": toml}, status=201
    )


async def patch_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    body = body_of(request, m.DevicePatch)
    actor = _actor(request)
    if body.mapping is not None:
        await _check_skus(request, body.mapping, body.allow_unknown_sku)

    def apply(db: Conn) -> dict[str, Any]:
        registry.get_device(db, device_id)  # UnknownDeviceError: 404
        if body.enabled is not None:
            registry.set_enabled(db, device_id, body.enabled, actor=actor)
        if body.env is not None:
            registry.set_env(db, device_id, "dev" if body.env == "dev" else "prod", actor=actor)
        if body.mapping is not None:
            registry.update_mapping(db, device_id, body.mapping, actor=actor)
        if body.tags is not None:
            groups.set_tags(db, device_id, body.tags, actor=actor)
        if body.site is not None:
            groups.set_site(db, device_id, body.site, actor=actor)
        return registry.get_device(db, device_id)

    config = body.env is not None or body.mapping is not None
    return web.json_response(await _mutate(request, apply, device_id, config=config))


async def delete_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    actor = _actor(request)
    await _mutate(request, lambda db: registry.remove_device(db, device_id, actor=actor), device_id)
    return web.Response(status=204)


async def rotate(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    actor = _actor(request)
    password = await _mutate(
        request, lambda db: registry.rotate_credentials(db, device_id, actor=actor), device_id
    )
    return web.json_response({"device_id": device_id, "password": password})


# --- events, orders, buffer ------------------------------------------------------------------


async def list_events(request: web.Request) -> web.Response:
    q = query_of(request, m.ListQuery)
    read = partial(queries.recent_events, device_id=q.device, limit=q.rows)
    return web.json_response({"Data": await request.app[STORE_KEY].read(read)})


_EVENT_FIELDS = tuple(m.EventOut.model_fields)


async def device_events(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    q = query_of(request, m.DeviceEventsQuery)
    page = await request.app[STORE_KEY].read(
        partial(
            history.device_events,
            device_id=device_id,
            before=q.before,
            after=q.after,
            limit=q.rows,
        )
    )
    if page is None:
        raise NotFoundError(f"unknown device {device_id!r}")
    rows = [{k: row[k] for k in _EVENT_FIELDS} for row in page.events]
    return web.json_response({"Data": rows, "older": page.older, "newer": page.newer})


async def get_event(request: web.Request) -> web.Response:
    device_id, event_id = request.match_info["device_id"], request.match_info["event_id"]
    event = await request.app[STORE_KEY].read(
        partial(queries.event_with_history, device_id=device_id, event_id=event_id.upper())
    )
    if event is None:
        raise NotFoundError(f"no event {event_id} of {device_id}")
    return web.json_response(event)


async def list_orders(request: web.Request) -> web.Response:
    q = query_of(request, m.ListQuery)
    read = partial(queries.recent_orders, device_id=q.device, limit=q.rows)
    return web.json_response({"Data": await request.app[STORE_KEY].read(read)})


async def list_buffer(request: web.Request) -> web.Response:
    limit = query_of(request, m.ListQuery).rows
    rows = await request.app[STORE_KEY].read(partial(queries.pending_buffer, limit=limit))
    return web.json_response({"Data": rows})


def _buffer_action(action: str) -> Callable[[web.Request], Any]:
    fn = outbox.retry_now if action == "retry" else outbox.discard

    async def handle(request: web.Request) -> web.Response:
        outbox_id = int(request.match_info["outbox_id"])  # OutboxPath checked it
        actor = _actor(request)
        done = await _registry_call(request, lambda db: fn(db, outbox_id, actor=actor))
        if not done:
            raise ConflictError(f"buffer row {outbox_id} is not pending", code="not_pending")
        request.app[BUS_KEY].publish(Notice("outbox", None, {"id": outbox_id}))
        return web.json_response({"ok": True})

    handle.__name__ = f"buffer_{action}"
    return handle


# --- alerts ------------------------------------------------------------------------------------


async def list_alerts(request: web.Request) -> web.Response:
    q = query_of(request, m.AlertsQuery)
    read = partial(alerts.list_alerts, state=q.state, device_id=q.device, limit=q.rows)
    return web.json_response(await request.app[STORE_KEY].read(read))


async def acknowledge_alert(request: web.Request) -> web.Response:
    alert_id = int(request.match_info["alert_id"])  # AlertPath checked it
    service = request.app.get(ALERTS_KEY)
    if service is None:
        raise NotFoundError("alerts are not evaluated by this app")
    try:
        alert = await service.acknowledge(alert_id, _actor(request))
    except alerts.AlertNotFoundError as exc:
        raise NotFoundError(str(exc)) from exc
    except alerts.AlertNotActiveError as exc:
        raise ConflictError(str(exc), code="not_active") from exc
    return web.json_response(alert)


# --- the operations and the document -----------------------------------------------------------


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=_document_json(), content_type="application/json")


NOT_FOUND_DEVICE = Reply(404, m.ErrorOut, "no such device")
CATALOG_UNAVAILABLE = Reply(
    424, m.ErrorOut, "catalog_unavailable: the platform's SKUs cannot be read now"
)
OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/api/openapi.json",
        openapi,
        "this document",
        (Reply(200, None, "OpenAPI 3.1", json=True),),
        tag="service",
    ),
    Operation(
        "GET",
        "/api/devices",
        list_devices,
        "every device, by id",
        (Reply(200, m.DevicesOut, "the devices"),),
        query=m.DevicesQuery,
        tag="devices",
    ),
    Operation(
        "POST",
        "/api/bulk/devices",
        bulk,
        "enable, disable, set env, add or remove a tag on many devices: all or none",
        (
            Reply(200, m.BulkOut, "every device changed"),
            Reply(400, m.ErrorOut, "invalid: the request as a whole (set_env without env)"),
            Reply(409, m.BulkErrorOut, "bulk_failed: nothing changed; why each device failed"),
        ),
        body=m.BulkIn,
        tag="devices",
    ),
    Operation(
        "POST",
        "/api/devices",
        add_device,
        "add a device; its MQTT password is answered once",
        (
            Reply(201, m.DeviceCreatedOut, "the device, its password and agent configuration"),
            Reply(400, m.ErrorOut, "invalid: a value the registry refuses; unknown_sku"),
            Reply(409, m.ErrorOut, "exists: the device id is taken"),
            CATALOG_UNAVAILABLE,
        ),
        body=m.DeviceIn,
        tag="devices",
        links=("/api/devices/", "device_id", "$response.body#/device/device_id"),
    ),
    Operation(
        "GET",
        "/api/devices/{device_id}",
        get_device,
        "one device",
        (Reply(200, m.DeviceOut, "the device"), NOT_FOUND_DEVICE),
        path_params=m.DevicePath,
        tag="devices",
    ),
    Operation(
        "PATCH",
        "/api/devices/{device_id}",
        patch_device,
        "enable or disable, env, mapping",
        (
            Reply(200, m.DeviceOut, "the device after the change"),
            Reply(400, m.ErrorOut, "invalid: a value the registry refuses; unknown_sku"),
            NOT_FOUND_DEVICE,
            CATALOG_UNAVAILABLE,
        ),
        path_params=m.DevicePath,
        body=m.DevicePatch,
        tag="devices",
    ),
    Operation(
        "DELETE",
        "/api/devices/{device_id}",
        delete_device,
        "remove a device",
        (Reply(204, None, "removed"), NOT_FOUND_DEVICE),
        path_params=m.DevicePath,
        tag="devices",
    ),
    Operation(
        "POST",
        "/api/devices/{device_id}/rotate-credentials",
        rotate,
        "a new MQTT password (answered once)",
        (Reply(200, m.RotatedOut, "the new password"), NOT_FOUND_DEVICE),
        path_params=m.DevicePath,
        tag="devices",
    ),
    Operation(
        "GET",
        "/api/catalog",
        get_catalog,
        "the order platform's SKUs (cached for catalog_ttl_s), as mappings are checked",
        (Reply(200, m.CatalogOut, "the SKUs, or why there are none"),),
        tag="devices",
    ),
    Operation(
        "GET",
        "/api/events",
        list_events,
        "recent events, newest first",
        (Reply(200, m.EventsOut, "the events"),),
        query=m.ListQuery,
        tag="events",
    ),
    Operation(
        "GET",
        "/api/devices/{device_id}/events",
        device_events,
        "a device's whole history, a page at a time, newest first",
        (Reply(200, m.DeviceEventsOut, "a page of events"), NOT_FOUND_DEVICE),
        path_params=m.DevicePath,
        query=m.DeviceEventsQuery,
        description="Keyset paging: follow `older` as `before` (and `newer` as `after`) for "
        "the page beside this one; a page costs the same however deep it is.",
        tag="events",
    ),
    *EXPORT_OPERATIONS,
    Operation(
        "GET",
        "/api/events/{device_id}/{event_id}",
        get_event,
        "one event with its status history",
        (Reply(200, m.EventDetailOut, "the event"), Reply(404, m.ErrorOut, "no such event")),
        path_params=m.EventPath,
        tag="events",
    ),
    Operation(
        "GET",
        "/api/orders",
        list_orders,
        "orders, newest first",
        (Reply(200, m.OrdersOut, "the orders"),),
        query=m.ListQuery,
        tag="orders",
    ),
    Operation(
        "GET",
        "/api/buffer",
        list_buffer,
        "pending order-outbox rows, next attempt first",
        (Reply(200, m.BufferOut, "the pending rows"),),
        query=m.ListQuery,
        description="`device` is ignored here; `limit` as in the lists.",
        tag="buffer",
    ),
    *(
        Operation(
            "POST",
            f"/api/buffer/{{outbox_id}}/{action}",
            _buffer_action(action),
            summary,
            (
                Reply(200, m.OkOut, "done"),
                Reply(404, m.ErrorOut, "no such buffer row"),
                Reply(409, m.ErrorOut, "not_pending: the row is not pending"),
            ),
            path_params=m.OutboxPath,
            tag="buffer",
        )
        for action, summary in (
            ("retry", "retry a buffered order now"),
            ("discard", "give up a buffered order"),
        )
    ),
    Operation(
        "GET",
        "/api/alerts",
        list_alerts,
        "alerts: open ones first, then the recently cleared, newest first",
        (Reply(200, m.AlertOut, "the alerts", many=True),),
        query=m.AlertsQuery,
        tag="alerts",
    ),
    Operation(
        "POST",
        "/api/alerts/{alert_id}/acknowledge",
        acknowledge_alert,
        "acknowledge an active alert (audited)",
        (
            Reply(200, m.AlertOut, "the alert, acknowledged"),
            Reply(404, m.ErrorOut, "no such alert"),
            Reply(409, m.ErrorOut, "not_active: acknowledged or cleared already"),
        ),
        path_params=m.AlertPath,
        tag="alerts",
    ),
    *EVENDI_OPERATIONS,
    *BROKER_OPERATIONS,
]

DESCRIPTION = """\
ingest's REST API: the device registry, events and their statuses, orders, the order
buffer, alerts and e-vendi assignments. `Authorization: Bearer <api token>` (an operator's session
cookie works too; its state-changing requests need the session's `X-CSRF-Token`).
Errors, every one (401 and 403 of the authentication included): `{"Error", "Message",
"Fields"?}`, the `ErrorOut` schema; `Error` is a stable code (`unauthorized`, `forbidden`,
`not_found`, `invalid`, `validation`, `exists`, `conflict`, `not_pending`, `not_active`,
`payload_too_large`, `method_not_allowed`, `internal`), `Fields` lists `{Field, Message}`
where a body (422) or a query parameter (400) broke its schema; 400 also a value the
registry refuses, 404, 409.
"""


@cache
def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of this API, made from ``OPERATIONS``."""
    return make_document(
        OPERATIONS,
        title="edgeorder ingest API",
        version=__version__,
        description=DESCRIPTION,
        error=m.ErrorOut,
    )


@cache
def _document_json() -> str:
    return json.dumps(openapi_document())


def install_api(app: web.Application) -> None:
    """Add the ``/api/`` routes (they use the app's ``STORE_KEY``) and their JSON errors."""
    app.middlewares.append(api_errors_middleware)
    install_operations(app, OPERATIONS)
