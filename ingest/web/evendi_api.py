"""``/api/evendi/assignments``: the e-vendi orders queued for devices (REST, JSON).

e-vendi can only finalize orders that already exist, so an operator (or another system)
assigns pending e-vendi orders to a device here; each press closes the device's oldest one
(``ingest.store.evendi_assignments``). Self-contained: its own request models, errors in the
API's ``{"Error", "Message"}`` shape; reads on the service's reader pool, changes as jobs of
its one writer (``STORE_KEY``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeorder import protocol as p
from edgeorder.ingest.keys import STORE_KEY
from edgeorder.ingest.store import evendi_assignments as book
from edgeorder.ingest.web.access import identity_of

__all__ = ["EVENDI_PATHS", "AssignmentIn", "install_evendi_api"]

T = TypeVar("T")
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class AssignmentIn(BaseModel):
    """Body of ``POST /api/evendi/assignments``."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=p.DEVICE_ID_PATTERN)
    order_id: str = Field(min_length=1, max_length=book.ORDER_ID_MAX, pattern=PRINTABLE)
    """e-vendi's ``orderId`` of an order open on e-vendi."""
    sku: str | None = Field(default=None, min_length=1, max_length=100, pattern=PRINTABLE)
    """Only presses ordering this SKU close it; None: any press of the device."""
    note: str = Field(default="", max_length=500)


def _error(status: int, code: str, message: str, **extra: Any) -> web.HTTPException:
    cls: type[web.HTTPException] = {
        400: web.HTTPBadRequest,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        422: web.HTTPUnprocessableEntity,
    }[status]
    body = json.dumps({"Error": code, "Message": message, **extra})
    return cls(text=body, content_type="application/json")


async def _call(
    request: web.Request, fn: Callable[[sqlite3.Connection], T], *, write: bool = False
) -> T:
    """``fn`` on the reader pool (``write``: as a writer job), off the event loop; store
    errors as HTTP errors."""
    store = request.app[STORE_KEY]
    try:
        return await (store.write(fn) if write else store.read(fn))
    except (book.UnknownAssignmentError, book.UnknownDeviceError) as exc:
        raise _error(404, "not_found", str(exc)) from exc
    except book.AssignmentConflictError as exc:
        raise _error(409, "conflict", str(exc)) from exc
    except book.AssignmentError as exc:
        raise _error(400, "invalid", str(exc)) from exc


def _actor(request: web.Request) -> str:
    """The authenticated caller, as audit rows name it (``token:NAME`` or the operator)."""
    try:
        return identity_of(request).actor
    except KeyError:  # no auth middleware in front (an app without the dashboard)
        return "api"


def _assignment_id(request: web.Request) -> int:
    raw = request.match_info["assignment_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise _error(404, "not_found", f"no e-vendi assignment {raw[:40]}")
    return int(raw)


async def list_assignments(request: web.Request) -> web.Response:
    """``GET``: newest first; ``?device=&state=&limit=`` (limit 1-1000, default 100)."""
    q = request.query
    try:
        limit = int(q.get("limit", "100"))
    except ValueError as exc:
        raise _error(400, "invalid", "limit must be an integer") from exc
    if not 1 <= limit <= 1000:
        raise _error(400, "invalid", "limit must be 1-1000")
    rows = await _call(
        request,
        lambda c: book.list_assignments(
            c, device_id=q.get("device"), state=q.get("state"), limit=limit
        ),
    )
    return web.json_response({"Data": rows})


async def add_assignment(request: web.Request) -> web.Response:
    """``POST``: queue an e-vendi order for a device; 201 with the assignment."""
    try:
        body = AssignmentIn.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = [
            {"Field": ".".join(map(str, e["loc"])), "Message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise _error(422, "validation", "invalid body", Fields=fields) from exc
    actor = _actor(request)
    row = await _call(
        request,
        lambda c: book.assign(
            c, body.device_id, body.order_id, sku=body.sku, note=body.note, actor=actor
        ),
        write=True,
    )
    return web.json_response(row, status=201)


async def get_assignment(request: web.Request) -> web.Response:
    assignment_id = _assignment_id(request)
    return web.json_response(await _call(request, lambda c: book.get_assignment(c, assignment_id)))


async def move_assignment(request: web.Request) -> web.Response:
    """``POST .../withdraw`` (a pending one) or ``.../requeue`` (a failed one)."""
    assignment_id, actor = _assignment_id(request), _actor(request)
    move = book.withdraw if request.match_info["action"] == "withdraw" else book.requeue
    moved = await _call(request, lambda c: move(c, assignment_id, actor=actor), write=True)
    return web.json_response(moved)


EVENDI_PATHS: list[tuple[str, str, str]] = [
    ("get", "/api/evendi/assignments", "e-vendi orders assigned to devices (?device=&state=)"),
    ("post", "/api/evendi/assignments", "Assign an open e-vendi order to a device"),
    ("get", "/api/evendi/assignments/{assignment_id}", "One assignment"),
    (
        "post",
        "/api/evendi/assignments/{assignment_id}/withdraw",
        "Take a pending order off the device's queue",
    ),
    (
        "post",
        "/api/evendi/assignments/{assignment_id}/requeue",
        "Queue a failed order again (after checking it on e-vendi)",
    ),
]


def install_evendi_api(app: web.Application) -> None:
    """Add the ``/api/evendi/`` routes."""
    r = app.router
    r.add_get("/api/evendi/assignments", list_assignments)
    r.add_post("/api/evendi/assignments", add_assignment)
    r.add_get("/api/evendi/assignments/{assignment_id}", get_assignment)
    r.add_post(
        r"/api/evendi/assignments/{assignment_id}/{action:withdraw|requeue}", move_assignment
    )
