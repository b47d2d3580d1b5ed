"""The JSON REST API under ``/api/``: devices, events, orders, the order buffer, OpenAPI.

Protected by the dashboard's auth middleware (``Authorization: Bearer <api token>``). Writes
go through the same registry/outbox functions the CLI and the dashboard use, then tell the
running service through the bus (``device``/``outbox`` notices).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
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
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.web.evendi_api import EVENDI_PATHS, AssignmentIn, install_evendi_api

__all__ = ["READER_KEY", "install_api", "openapi_document"]

T = TypeVar("T")
READER_KEY = web.AppKey("ingest_reader", Reader)


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


def _registry_call(request: web.Request, fn: Callable[[sqlite_utils.Database], T]) -> Any:
    path = request.app[SETTINGS_KEY].db_path

    def run() -> T:
        db = open_db(path, migrate_schema=False)
        try:
            return fn(db)
        finally:
            db.conn.close()

    return asyncio.to_thread(run)


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
    return str(request.get("identity", "api"))


# --- devices -----------------------------------------------------------------------------------


async def list_devices(request: web.Request) -> web.Response:
    return web.json_response({"Data": await _registry_call(request, registry.list_devices)})


async def get_device(request: web.Request) -> web.Response:
    device_id = request.match_info["device_id"]
    try:
        return web.json_response(
            await _registry_call(request, lambda db: registry.get_device(db, device_id))
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


def _rows(conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise _error(400, "invalid", "limit must be an integer") from exc


async def _query(request: web.Request, table_sql: str, order: str) -> web.Response:
    device = request.query.get("device")
    where, params = ("WHERE device_id = ?", [device]) if device else ("", [])
    sql = f"{table_sql} {where} ORDER BY {order} LIMIT ?"
    limit = _limit(request)
    rows = await request.app[READER_KEY](lambda c: _rows(c, sql, [*params, limit]))
    return web.json_response({"Data": rows})


async def list_events(request: web.Request) -> web.Response:
    return await _query(
        request,
        "SELECT id, device_id, event_id, kind, trigger, seq, ts, received_at, action, "
        "state, order_id, reason, updated_at FROM inbox",
        "id DESC",
    )


async def get_event(request: web.Request) -> web.Response:
    device_id, event_id = request.match_info["device_id"], request.match_info["event_id"]

    def load(conn: sqlite3.Connection) -> dict[str, Any] | None:
        found = _rows(
            conn,
            "SELECT * FROM inbox WHERE device_id = ? AND event_id = ?",
            [device_id, event_id.upper()],
        )
        if not found:
            return None
        event = found[0]
        event["history"] = _rows(
            conn,
            "SELECT state, order_id, reason, source, at FROM status_history "
            "WHERE device_id = ? AND event_id = ? ORDER BY id",
            [device_id, event_id.upper()],
        )
        return event

    event = await request.app[READER_KEY](load)
    if event is None:
        raise _error(404, "not_found", f"no event {event_id} of {device_id}")
    return web.json_response(event)


async def list_orders(request: web.Request) -> web.Response:
    return await _query(request, "SELECT * FROM orders", "created_at DESC")


async def list_buffer(request: web.Request) -> web.Response:
    def load(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        return _rows(
            conn,
            "SELECT * FROM order_outbox WHERE state = 'pending' ORDER BY next_attempt_at LIMIT ?",
            [_limit(request)],
        )

    return web.json_response({"Data": await request.app[READER_KEY](load)})


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


def install_api(app: web.Application, db_path: Path) -> None:
    """Add the ``/api/`` routes and the reader they use."""
    app[READER_KEY] = Reader(db_path)
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
