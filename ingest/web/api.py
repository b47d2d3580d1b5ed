"""The JSON REST API under ``/api/``: devices, events, orders, the order buffer, OpenAPI.

Protected by the dashboard's auth middleware (``Authorization: Bearer <api token>``). Writes
go through the same registry/outbox functions the CLI and the dashboard use, as jobs of the
service's one writer, audited with the caller's name (the operator, or ``token:NAME``), then
tell the running service through the bus (``device``/``outbox`` notices). Reads run on the
service's reader pool; the SQL is in ``ingest.store``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import sqlite_utils
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeorder import protocol as p
from edgeorder.ingest.bus import Notice
from edgeorder.ingest.domain.devices import DEFAULT_CANCEL_WINDOW_S, CancelWindowS, DeviceName
from edgeorder.ingest.domain.firmware import render_agent_toml
from edgeorder.ingest.keys import BUS_KEY, PUBLISHER_KEY, SETTINGS_KEY
from edgeorder.ingest.orders import outbox
from edgeorder.ingest.store import queries, registry
from edgeorder.ingest.web.access import identity_of
from edgeorder.ingest.web.evendi_api import EVENDI_PATHS, AssignmentIn, install_evendi_api
from edgeorder.ingest.web.state import STORE_KEY

__all__ = ["install_api", "openapi_document"]

T = TypeVar("T")


class DeviceIn(BaseModel):
    """Body of ``POST /api/devices``."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=p.DEVICE_ID_PATTERN)
    name: DeviceName = ""
    mapping: p.ButtonMapping
    env: str = Field(default="prod", pattern="^(dev|prod)$")
    allow_parallel: bool = False
    cancel_window_s: CancelWindowS = DEFAULT_CANCEL_WINDOW_S
    profile: dict[str, Any] | None = None


class DevicePatch(BaseModel):
    """Body of ``PATCH /api/devices/{id}`` (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    env: str | None = Field(default=None, pattern="^(dev|prod)$")
    mapping: p.ButtonMapping | None = None


def _error(status: int, code: str, message: str, **extra: Any) -> web.HTTPException:
    body = json.dumps({"Error": code, "Message": message, **extra})
    cls = {
        400: web.HTTPBadRequest,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        422: web.HTTPUnprocessableEntity,
    }[status]
    return cls(text=body, content_type="application/json")


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = [
            {"Field": ".".join(map(str, e["loc"])), "Message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise _error(422, "validation", "invalid body", Fields=fields) from exc


async def _registry_call(
    request: web.Request, fn: Callable[[sqlite_utils.Database], T], *, write: bool = True
) -> T:
    """``fn`` as a job of the service's writer (or, ``write=False``, on its reader pool)."""
    store = request.app[STORE_KEY]
    return await (store.write_db(fn) if write else store.read_db(fn))


async def _mutate(
    request: web.Request,
    fn: Callable[[sqlite_utils.Database], T],
    device_id: str | None,
    *,
    config: bool = False,
) -> T:
    try:
        result: T = await _registry_call(request, fn)
    except registry.UnknownDeviceError as exc:
        raise _error(404, "not_found", str(exc)) from exc
    except registry.DeviceExistsError as exc:
        raise _error(409, "exists", str(exc)) from exc
    except registry.RegistryError as exc:
        raise _error(400, "invalid", str(exc)) from exc
    request.app[BUS_KEY].publish(Notice("device", device_id, {"source": "api"}))
    publisher = request.app.get(PUBLISHER_KEY)
    if config and publisher is not None and device_id is not None:
        await publisher.publish_config(device_id)
    return result


def _actor(request: web.Request) -> str:
    """How the audit trail names the caller: the operator, or ``token:NAME``."""
    try:
        return identity_of(request).actor
    except KeyError:  # no auth middleware in front (an app without the dashboard)
        return "api"


# --- devices -----------------------------------------------------------------------------------


async def list_devices(request: web.Request) -> web.Response:
    devices = await _registry_call(request, registry.list_devices, write=False)
    return web.json_response({"Data": devices})


async def get_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    try:
        return web.json_response(
            await _registry_call(
                request, lambda db: registry.get_device(db, device_id), write=False
            )
        )
    except registry.UnknownDeviceError as exc:
        raise _error(404, "not_found", str(exc)) from exc


async def add_device(request: web.Request) -> web.Response:
    body: DeviceIn = await _body(request, DeviceIn)
    actor = _actor(request)
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
            profile=body.profile,
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
    body: DevicePatch = await _body(request, DevicePatch)
    actor = _actor(request)

    def apply(db: sqlite_utils.Database) -> dict[str, Any]:
        row = registry.get_device(db, device_id)
        if body.enabled is not None:
            row = registry.set_enabled(db, device_id, body.enabled, actor=actor)
        if body.env is not None:
            row = registry.set_env(
                db, device_id, "dev" if body.env == "dev" else "prod", actor=actor
            )
        if body.mapping is not None:
            row = registry.update_mapping(db, device_id, body.mapping, actor=actor)
        return row

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


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise _error(400, "invalid", "limit must be an integer") from exc


async def list_events(request: web.Request) -> web.Response:
    read = partial(queries.recent_events, device_id=request.query.get("device"))
    rows = await request.app[STORE_KEY].read(partial(read, limit=_limit(request)))
    return web.json_response({"Data": rows})


async def get_event(request: web.Request) -> web.Response:
    device_id, event_id = request.match_info["device_id"], request.match_info["event_id"]
    event = await request.app[STORE_KEY].read(
        partial(queries.event_with_history, device_id=device_id, event_id=event_id.upper())
    )
    if event is None:
        raise _error(404, "not_found", f"no event {event_id} of {device_id}")
    return web.json_response(event)


async def list_orders(request: web.Request) -> web.Response:
    read = partial(queries.recent_orders, device_id=request.query.get("device"))
    rows = await request.app[STORE_KEY].read(partial(read, limit=_limit(request)))
    return web.json_response({"Data": rows})


async def list_buffer(request: web.Request) -> web.Response:
    rows = await request.app[STORE_KEY].read(partial(queries.pending_buffer, limit=_limit(request)))
    return web.json_response({"Data": rows})


async def buffer_action(request: web.Request) -> web.Response:
    try:
        outbox_id = int(request.match_info["outbox_id"])
    except ValueError as exc:
        raise _error(404, "not_found", "no such buffer row") from exc
    if not 0 < outbox_id <= p.INT64_MAX:  # SQLite would raise OverflowError (a 500)
        raise _error(404, "not_found", "no such buffer row")
    fn = outbox.retry_now if request.match_info["action"] == "retry" else outbox.discard
    actor = _actor(request)
    done = await _registry_call(request, lambda db: fn(db, outbox_id, actor=actor))
    if not done:
        raise _error(409, "not_pending", f"buffer row {outbox_id} is not pending")
    request.app[BUS_KEY].publish(Notice("outbox", None, {"id": outbox_id}))
    return web.json_response({"ok": True})


# --- OpenAPI -----------------------------------------------------------------------------------

_PATHS: list[tuple[str, str, str]] = [
    ("get", "/api/devices", "List devices"),
    ("post", "/api/devices", "Add a device (returns its MQTT password once)"),
    ("get", "/api/devices/{device_id}", "One device"),
    ("patch", "/api/devices/{device_id}", "Enable/disable, env, mapping"),
    ("delete", "/api/devices/{device_id}", "Remove a device"),
    ("post", "/api/devices/{device_id}/rotate-credentials", "New MQTT password"),
    ("get", "/api/events", "Recent events (?device=&limit=)"),
    ("get", "/api/events/{device_id}/{event_id}", "One event with its status history"),
    ("get", "/api/orders", "Orders (?device=&limit=)"),
    ("get", "/api/buffer", "Pending order-outbox rows"),
    ("post", "/api/buffer/{outbox_id}/retry", "Retry a buffered order now"),
    ("post", "/api/buffer/{outbox_id}/discard", "Give up a buffered order"),
    *EVENDI_PATHS,
]


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of this API."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary in _PATHS:
        params = [
            {"name": name.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
            for name in path.split("/")
            if name.startswith("{")
        ]
        op: dict[str, Any] = {
            "summary": summary,
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
        }
        if (method, path) == ("post", "/api/devices"):
            op["requestBody"] = {
                "content": {"application/json": {"schema": DeviceIn.model_json_schema()}}
            }
        if (method, path) == ("post", "/api/evendi/assignments"):
            op["requestBody"] = {
                "content": {"application/json": {"schema": AssignmentIn.model_json_schema()}}
            }
        if method == "patch":
            op["requestBody"] = {
                "content": {"application/json": {"schema": DevicePatch.model_json_schema()}}
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "edgeorder ingest API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def install_api(app: web.Application) -> None:
    """Add the ``/api/`` routes (they use the app's ``STORE_KEY``)."""
    r = app.router
    r.add_get("/api/openapi.json", openapi)
    r.add_get("/api/devices", list_devices)
    r.add_post("/api/devices", add_device)
    r.add_get("/api/devices/{device_id}", get_device)
    r.add_patch("/api/devices/{device_id}", patch_device)
    r.add_delete("/api/devices/{device_id}", delete_device)
    r.add_post("/api/devices/{device_id}/rotate-credentials", rotate)
    r.add_get("/api/events", list_events)
    r.add_get("/api/events/{device_id}/{event_id}", get_event)
    r.add_get("/api/orders", list_orders)
    r.add_get("/api/buffer", list_buffer)
    r.add_post(r"/api/buffer/{outbox_id}/{action:retry|discard}", buffer_action)
    install_evendi_api(app)
