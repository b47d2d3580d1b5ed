"""ingest's REST API declared once: the routes and the OpenAPI 3.1 document come from it.

An ``Operation`` names its method and path, the pydantic models of its path parameters,
query and body, and every answer it can give. ``install_operations`` registers each one
behind a wrapper that validates the inputs with those same models, in one order for every
route (path 404, query 400, body 422), then calls the handler; ``openapi_document`` describes
them with the models' JSON Schemas, adding the answers every operation of its kind can give
(401 and 403 from the auth middleware, 413 for a body over 1 MiB).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from edgeorder.ingest.errors import (
    ApiError,
    BadRequestError,
    NotFoundError,
    ValidationFailedError,
)

__all__ = [
    "BODY",
    "QUERY",
    "Operation",
    "Reply",
    "api_errors_middleware",
    "body_of",
    "error_response",
    "install_operations",
    "openapi_document",
    "query_of",
]

log = structlog.get_logger("edgeorder.ingest.web.openapi")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
REF = "#/components/schemas/{model}"
BODY = web.RequestKey("api_body", BaseModel)
QUERY = web.RequestKey("api_query", BaseModel)


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented answer: status, body model (None: no body; ``many``: a JSON array)."""

    status: int
    model: type[BaseModel] | None
    description: str
    many: bool = False
    json: bool = False  # a JSON object without a model (the document itself)
    media: str | None = None  # a body that is not JSON: its media type (a string)


@dataclass(frozen=True)
class Operation:
    """A route of the REST API and its contract."""

    method: str
    path: str
    handler: Handler
    summary: str
    replies: tuple[Reply, ...]
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    description: str = ""
    tag: str = "api"
    links: tuple[str, str, str] | None = None
    """(path prefix, path parameter, runtime expression): where what this operation created
    is used next, e.g. ``("/api/devices/", "device_id", "$response.body#/device/device_id")``."""

    @property
    def operation_id(self) -> str:
        slug = "".join(c if c.isalnum() else "_" for c in self.path).strip("_")
        return f"{self.method.lower()}_{slug}"


def error_response(error: ApiError) -> web.Response:
    """The one rendering of an API error (``ingest.errors``): ``{"Error", "Message",
    "Fields"?}`` with its status and headers. The ``/api`` middleware and the auth middleware
    both answer with it."""
    return web.json_response(error.body(), status=error.status, headers=error.headers or None)


def _fields(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"Field": ".".join(map(str, e["loc"])) or "body", "Message": e["msg"]}
        for e in exc.errors(include_url=False)
    ]


def body_of(request: web.Request, model: type[M]) -> M:
    """The body the operation's model validated."""
    body = request[BODY]
    assert isinstance(body, model)
    return body


def query_of(request: web.Request, model: type[M]) -> M:
    """The query string the operation's model validated."""
    query = request[QUERY]
    assert isinstance(query, model)
    return query


async def _validate(op: Operation, request: web.Request) -> None:
    if op.path_params is not None:
        try:
            op.path_params.model_validate(dict(request.match_info))
        except ValidationError as exc:
            raise NotFoundError(f"no such {op.tag} resource") from exc
    if op.query is not None:
        try:
            request[QUERY] = op.query.model_validate({k: request.query[k] for k in request.query})
        except ValidationError as exc:
            raise BadRequestError("invalid query parameters", fields=_fields(exc)) from exc
    if op.body is not None:
        request[BODY] = _body(op.body, await request.read())


def _whole(value: Any) -> Any:
    """JSON has one number type and JSON Schema counts ``2.0`` as an integer: a whole float
    is that integer (``2.5`` stays a float, and an integer field refuses it)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def _body(model: type[BaseModel], raw: bytes) -> BaseModel:
    """The body validated strictly (a string is not a number, 0 is not false), as the
    document's JSON Schema reads it; 422 with every bad field otherwise."""
    try:
        data = json.loads(raw)
        whole = json.dumps(_whole(data))
    except ValueError as exc:  # not JSON, or not UTF-8
        fields = [{"Field": "body", "Message": f"not JSON: {exc}"}]
        raise ValidationFailedError("invalid body", fields=fields) from exc
    except RecursionError as exc:  # nested deeper than Python's stack: no body of ours is
        fields = [{"Field": "body", "Message": "JSON nested too deeply"}]
        raise ValidationFailedError("invalid body", fields=fields) from exc
    try:
        return model.model_validate_json(whole, strict=True)
    except ValidationError as exc:
        raise ValidationFailedError("invalid body", fields=_fields(exc)) from exc


def _wrap(op: Operation) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await _validate(op, request)
        return await op.handler(request)

    handle.__name__ = op.handler.__name__
    return handle


def install_operations(app: web.Application, operations: list[Operation]) -> None:
    for op in operations:
        app.router.add_route(op.method, op.path, _wrap(op))


_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


@web.middleware
async def api_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under ``/api`` every error is JSON ``{"Error", "Message"}``: the ``ApiError`` a handler
    raises, aiohttp's own 404, 405 and 413, and an unexpected exception (a 500, logged with
    its traceback)."""
    if not (request.path.startswith("/api/") or request.path == "/api"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        allow = exc.headers.get("Allow")
        code = _CODES.get(exc.status, "http_error")
        headers = {"Allow": allow} if allow else None
        return error_response(ApiError(exc.reason, code=code, status=exc.status, headers=headers))
    except Exception:
        log.exception("api_unhandled_error", path=request.path, method=request.method)
        return error_response(ApiError("internal error", code="internal", status=500))


# --- the document --------------------------------------------------------------------------


class _Implied:
    """Answers every operation of a kind can give; their models are the caller's."""

    def __init__(self, error: type[BaseModel]) -> None:
        self.error = error

    def replies(self, op: Operation) -> list[Reply]:
        out = [Reply(401, self.error, "no session and no valid Authorization: Bearer token")]
        if op.method != "GET":
            out.append(Reply(403, self.error, "a session request without its CSRF token"))
        if op.path_params is not None:
            out.append(Reply(404, self.error, "not found"))
        if op.query is not None:
            out.append(Reply(400, self.error, "invalid query parameters (Fields says which)"))
        if op.body is not None:
            out.append(Reply(422, self.error, "the body breaks the schema (Fields says how)"))
            out.append(Reply(413, self.error, "payload_too_large: the body is over 1 MiB"))
        return out


def _schema(reply: Reply) -> dict[str, Any] | None:
    if reply.model is None:
        return {"type": "object"} if reply.json else None
    ref: dict[str, Any] = {"$ref": REF.format(model=reply.model.__name__)}
    return {"type": "array", "items": ref} if reply.many else ref


def _response(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    schema = _schema(reply)
    if reply.media is not None:
        out["content"] = {reply.media: {"schema": {"type": "string"}}}
    elif schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    if reply.status == 401:
        out["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return out


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        clean = {k: v for k, v in prop.items() if k not in ("title", "description", "default")}
        branches = clean.pop("anyOf", None)
        if branches is not None:  # a query parameter is absent, never null
            kept = [b for b in branches if b != {"type": "null"}]
            clean = {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **clean}
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": clean,
        }
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append(param)
    return params


def _links(op: Operation, operations: list[Operation]) -> dict[str, Any]:
    if op.links is None:
        return {}
    prefix, param, expression = op.links
    return {
        other.operation_id: {"operationId": other.operation_id, "parameters": {param: expression}}
        for other in operations
        if other.path.startswith(prefix) and f"{{{param}}}" in other.path
    }


def _operation(op: Operation, implied: _Implied, operations: list[Operation]) -> dict[str, Any]:
    replies = {r.status: r for r in implied.replies(op)}
    replies.update({r.status: r for r in op.replies})
    responses = {str(s): _response(replies[s]) for s in sorted(replies)}
    links = _links(op, operations)
    if links:
        created = min(s for s in replies if 200 <= s < 300)
        responses[str(created)]["links"] = links
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        doc["description"] = op.description
    params = []
    if op.path_params is not None:
        params += _parameters(op.path_params, "path")
    if op.query is not None:
        params += _parameters(op.query, "query")
    if params:
        doc["parameters"] = params
    if op.body is not None:
        ref = {"$ref": REF.format(model=op.body.__name__)}
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    return doc


def _require_discriminators(defs: dict[str, Any]) -> None:
    """A pydantic discriminated union needs its tag to pick the variant even where the variant
    gives it a default (``type: "reorder"``): the document says so, as the server does."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            tag = node.get("discriminator", {}).get("propertyName")
            if tag is not None:
                for ref in node.get("discriminator", {}).get("mapping", {}).values():
                    variant = defs[ref.rsplit("/", 1)[1]]
                    variant["required"] = sorted({*variant.get("required", []), tag})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(defs)


def openapi_document(
    operations: list[Operation],
    *,
    title: str,
    version: str,
    description: str,
    error: type[BaseModel],
) -> dict[str, Any]:
    """OpenAPI 3.1 of ``operations``: every path, parameter, body and answer, from the models;
    ``error`` is the one schema of every error answer (``ingest.errors``)."""
    implied = _Implied(error)
    pairs: list[tuple[type[BaseModel], Any]] = [(error, "serialization")]
    for op in operations:
        if op.body is not None:
            pairs.append((op.body, "validation"))
        pairs += [(r.model, "serialization") for r in op.replies if r.model is not None]
    _, defs = models_json_schema(list(dict.fromkeys(pairs)), ref_template=REF)
    _require_discriminators(defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, implied, operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(defs.get("$defs", {}).items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
