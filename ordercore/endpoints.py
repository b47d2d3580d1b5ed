"""Endpoints declared once: the router registers them and the OpenAPI document describes them.

An ``Endpoint`` names its path, method, the roles allowed, its query / body models (pydantic),
whether it takes an ``Idempotency-Key``, and the answers its handler can give. ``register``
wraps the handler so the checks happen in one order for every route, from the same models
the document is made of: 403 role, 400 key / query / body, then the handler (404, 409, 422).
(401 is the auth middleware's, before routing decides anything.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from aiohttp import web
from pydantic import BaseModel, ValidationError

from edgeorder.ordercore.errors import ApiError, FieldError, field_errors
from edgeorder.ordercore.fields import IDEMPOTENCY_KEY, MAX_ID
from edgeorder.ordercore.filters import parse_query
from edgeorder.ordercore.http import PRINCIPAL, PUBLIC_PATHS, read_json
from edgeorder.ordercore.principals import Principal, Role

__all__ = ["ALL_ROLES", "Call", "Endpoint", "Reply", "register"]

ALL_ROLES = frozenset(Role)
B = TypeVar("B", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented answer: status, body model (None: no body; ``many``: a JSON array of
    it), what it means, the response headers it may carry (name, description)."""

    status: int
    model: type[BaseModel] | None
    description: str
    headers: tuple[tuple[str, str], ...] = ()
    many: bool = False
    json: bool = False  # a JSON object without a model (the OpenAPI document itself)
    text: str | None = None  # a text body of this media type (``/metrics``)


@dataclass(slots=True)
class Call(Generic[B, Q]):
    """A request that passed the endpoint's checks: who, the validated inputs."""

    request: web.Request
    principal: Principal | None  # None on a public endpoint only
    body: B | None
    query: Q | None
    raw_body: Any  # the decoded JSON (its hash keys idempotency)
    key: str | None

    @property
    def id(self) -> int:
        """The ``{id}`` path parameter; 404 outside 1..2^63-1 (the route's regex: digits)."""
        value = int(self.request.match_info["id"])
        if not 1 <= value <= MAX_ID:
            raise ApiError.not_found(f"id {value} not found")
        return value

    @property
    def who(self) -> Principal:
        """The principal of an authenticated endpoint."""
        assert self.principal is not None
        return self.principal

    def the_body(self) -> B:
        assert self.body is not None
        return self.body

    def the_query(self) -> Q:
        assert self.query is not None
        return self.query


Handler = Callable[[Call[Any, Any]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    """A route and its contract (see the module docstring)."""

    method: str
    path: str
    handler: Handler
    summary: str
    replies: tuple[Reply, ...]
    roles: frozenset[Role] | None = ALL_ROLES  # None: public, no token
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    idempotency_key: bool = False
    description: str = ""
    tag: str = "orders"
    raw_body: bool = False  # the handler validates the body itself (batch items)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def route_path(self) -> str:
        """The aiohttp path: ``{id}`` only ever matches digits."""
        return self.path.replace("{id}", r"{id:\d+}")


def _key(request: web.Request) -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    try:
        return IDEMPOTENCY_KEY.validate_python(raw)
    except ValidationError as exc:
        raise ApiError(
            400,
            "bad_request",
            "Idempotency-Key must be 1-255 visible ASCII characters (spaces only inside)",
            [FieldError("Idempotency-Key", f.reason) for f in field_errors(exc)],
        ) from exc


async def _body(ep: Endpoint, request: web.Request) -> tuple[Any, BaseModel | None]:
    if ep.body is None and not ep.raw_body:
        return None, None
    raw = await read_json(request, optional=not ep.body_required)
    if ep.body is None:
        return raw, None
    try:
        return raw, ep.body.model_validate(raw)
    except ValidationError as exc:
        raise ApiError.validation(field_errors(exc)) from exc


def _wrap(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = cast(Principal | None, request.get(PRINCIPAL))
        if ep.roles is not None and (principal is None or principal.role not in ep.roles):
            assert principal is not None  # the auth middleware answered 401 already
            allowed = ", ".join(sorted(r.value for r in ep.roles))
            raise ApiError.forbidden(
                f"a {principal.role.value} token may not {ep.method} {ep.path} (only {allowed})"
            )
        key = _key(request) if ep.idempotency_key else None
        query = parse_query(ep.query, request.query) if ep.query is not None else None
        raw, body = await _body(ep, request)
        return await ep.handler(Call(request, principal, body, query, raw, key))

    handle.__name__ = ep.handler.__name__
    return handle


def register(router: web.UrlDispatcher, endpoints: list[Endpoint]) -> None:
    """Add every endpoint. A public one must be a path the auth middleware lets through."""
    for ep in endpoints:
        if ep.roles is None and ep.path not in PUBLIC_PATHS:
            raise ValueError(f"{ep.path} is public but not in http.PUBLIC_PATHS")
        router.add_route(ep.method, ep.route_path, _wrap(ep))
