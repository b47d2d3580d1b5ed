"""``/api/evendi/assignments``: the e-vendi orders queued for devices (REST, JSON).

e-vendi can only finalize orders that already exist, so an operator (or another system)
assigns pending e-vendi orders to a device here; each press closes the device's oldest one
(``ingest.store.evendi_assignments``). Self-contained: its own models, errors in the API's
``{"Error", "Message"}`` shape; reads on the service's reader pool, changes as jobs of its one
writer (``STORE_KEY``). Its routes are operations of the REST API (``EVENDI_OPERATIONS``), so
the OpenAPI document describes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from edgeorder import protocol as p
from edgeorder.ingest.errors import BadRequestError, ConflictError, NotFoundError
from edgeorder.ingest.keys import STORE_KEY
from edgeorder.ingest.store import evendi_assignments as book
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.web.access import identity_of
from edgeorder.ingest.web.api_models import ErrorOut
from edgeorder.ingest.web.openapi import Operation, Reply, body_of, query_of

__all__ = ["EVENDI_OPERATIONS", "AssignmentIn", "AssignmentOut"]

T = TypeVar("T")
PRINTABLE = r"^[!-~]([ -~]*[!-~])?$"
"""Visible ASCII, spaces only inside: what the store's check (stripped, ``isprintable``)
always accepts and JSON Schema can state (Unicode's "printable" categories it cannot)."""


class AssignmentIn(BaseModel):
    """Body of ``POST /api/evendi/assignments``."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=p.DEVICE_ID_PATTERN)
    order_id: str = Field(min_length=1, max_length=book.ORDER_ID_MAX, pattern=PRINTABLE)
    """e-vendi's ``orderId`` of an order open on e-vendi."""
    sku: str | None = Field(default=None, min_length=1, max_length=100, pattern=PRINTABLE)
    """Only presses ordering this SKU close it; None: any press of the device."""
    note: str = Field(default="", max_length=500)


def _digits(value: object) -> object:
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > 19:
            raise ValueError("must be an integer written in decimal digits")
        return int(value)
    return value


class AssignmentsQuery(BaseModel):
    """``?device=&state=&limit=`` of the list."""

    model_config = ConfigDict(extra="ignore")

    device: str | None = Field(None, description="only this device's assignments")
    state: Literal["pending", "claimed", "closed", "failed", "withdrawn"] | None = None
    limit: Annotated[
        int, Field(ge=1, le=1000, description="newest first"), BeforeValidator(_digits)
    ] = 100


class AssignmentPath(BaseModel):
    """An assignment id: anything else names no assignment (404)."""

    assignment_id: Annotated[int, Field(ge=1, le=p.INT64_MAX), BeforeValidator(_digits)]


class AssignmentOut(BaseModel):
    """One e-vendi order assigned to a device (``evendi_assignments`` row)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    device_id: str
    sku: str | None
    order_id: str
    note: str
    state: Literal["pending", "claimed", "closed", "failed", "withdrawn"]
    event_id: str | None
    attempts: int
    last_error: str | None
    created_by: str
    created_at: str
    claimed_at: str | None
    closed_at: str | None
    updated_at: str


class AssignmentsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Data: list[AssignmentOut]


async def _call(request: web.Request, fn: Callable[[Conn], T], *, write: bool = False) -> T:
    """``fn`` on the reader pool (``write``: as a writer job), off the event loop; store
    errors as HTTP errors."""
    store = request.app[STORE_KEY]
    try:
        return await (store.write(fn) if write else store.read(fn))
    except (book.UnknownAssignmentError, book.UnknownDeviceError) as exc:
        raise NotFoundError(str(exc)) from exc
    except book.AssignmentConflictError as exc:
        raise ConflictError(str(exc)) from exc
    except book.AssignmentError as exc:
        raise BadRequestError(str(exc)) from exc


def _actor(request: web.Request) -> str:
    """The authenticated caller, as audit rows name it (``token:NAME`` or the operator)."""
    try:
        return identity_of(request).actor
    except KeyError:  # no auth middleware in front (an app without the dashboard)
        return "api"


def _assignment_id(request: web.Request) -> int:
    return int(request.match_info["assignment_id"])  # AssignmentPath checked it


async def list_assignments(request: web.Request) -> web.Response:
    """``GET``: newest first; ``?device=&state=&limit=`` (limit 1-1000, default 100)."""
    q = query_of(request, AssignmentsQuery)
    rows = await _call(
        request,
        lambda c: book.list_assignments(c, device_id=q.device, state=q.state, limit=q.limit),
    )
    return web.json_response({"Data": rows})


async def add_assignment(request: web.Request) -> web.Response:
    """``POST``: queue an e-vendi order for a device; 201 with the assignment."""
    body = body_of(request, AssignmentIn)
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


def _move(action: str) -> Callable[[web.Request], Any]:
    """``POST .../withdraw`` (a pending one) or ``.../requeue`` (a failed one)."""
    move = book.withdraw if action == "withdraw" else book.requeue

    async def handle(request: web.Request) -> web.Response:
        assignment_id, actor = _assignment_id(request), _actor(request)
        row = await _call(request, lambda c: move(c, assignment_id, actor=actor), write=True)
        return web.json_response(row)

    handle.__name__ = f"{action}_assignment"
    return handle


_ONE = "/api/evendi/assignments/{assignment_id}"
_NOT_FOUND = Reply(404, ErrorOut, "no such assignment")
EVENDI_OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/api/evendi/assignments",
        list_assignments,
        "e-vendi orders assigned to devices, newest first",
        (Reply(200, AssignmentsOut, "the assignments"),),
        query=AssignmentsQuery,
        tag="evendi",
    ),
    Operation(
        "POST",
        "/api/evendi/assignments",
        add_assignment,
        "assign an open e-vendi order to a device",
        (
            Reply(201, AssignmentOut, "the assignment, pending"),
            Reply(400, ErrorOut, "invalid: a value the store refuses"),
            Reply(404, ErrorOut, "no such device"),
            Reply(409, ErrorOut, "conflict: the order is assigned already"),
        ),
        body=AssignmentIn,
        tag="evendi",
        links=("/api/evendi/assignments/", "assignment_id", "$response.body#/id"),
    ),
    Operation(
        "GET",
        _ONE,
        get_assignment,
        "one assignment",
        (Reply(200, AssignmentOut, "the assignment"), _NOT_FOUND),
        path_params=AssignmentPath,
        tag="evendi",
    ),
    Operation(
        "POST",
        f"{_ONE}/withdraw",
        _move("withdraw"),
        "take a pending order off the device's queue",
        (
            Reply(200, AssignmentOut, "the assignment, withdrawn"),
            _NOT_FOUND,
            Reply(409, ErrorOut, "conflict: it is not pending"),
        ),
        path_params=AssignmentPath,
        tag="evendi",
    ),
    Operation(
        "POST",
        f"{_ONE}/requeue",
        _move("requeue"),
        "queue a failed order again (after checking it on e-vendi)",
        (
            Reply(200, AssignmentOut, "the assignment, pending again"),
            _NOT_FOUND,
            Reply(409, ErrorOut, "conflict: it has not failed"),
        ),
        path_params=AssignmentPath,
        tag="evendi",
    ),
]
