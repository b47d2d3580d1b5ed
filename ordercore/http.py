"""HTTP plumbing shared by the route modules: JSON in/out, auth and error middlewares, and the
logger that keeps malformed HTTP (a NUL byte in a header) out of the ERROR log
(``edgeorder.logs.ProtocolErrorLogger``, shared with ingest)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from edgeorder.logs import ProtocolErrorLogger
from edgeorder.ordercore.core import CORE
from edgeorder.ordercore.errors import ApiError
from edgeorder.ordercore.metrics import route_label
from edgeorder.ordercore.principals import Principal, Token
from edgeorder.ordercore.views import dumps

__all__ = [
    "PRINCIPAL",
    "PUBLIC_PATHS",
    "ProtocolErrorLogger",
    "auth_middleware",
    "error_middleware",
    "json_response",
    "metrics_middleware",
    "read_json",
]

log = structlog.get_logger("edgeorder.ordercore.http")
PUBLIC_PATHS = frozenset({"/livez", "/healthz", "/metrics", "/api/openapi.json"})
PRINCIPAL = web.RequestKey("principal", Principal)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    text = body if isinstance(body, str) else dumps(body)
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The decoded JSON object of the body; ApiError 400 if it is not one."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(
            400, "malformed_json", "the request body is empty; a JSON object is required"
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8
        raise ApiError(400, "malformed_json", f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the request body must be a JSON object")
    return body


def _principal(header: str, tokens: list[Token]) -> Principal | None:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    given = secret.strip().encode("utf-8", "surrogateescape")  # header bytes not UTF-8: 401
    # compare against every token so timing does not say which one nearly matched
    matches = [hmac.compare_digest(given, t.secret.encode()) for t in tokens]
    return next((t.principal for t, hit in zip(tokens, matches, strict=True) if hit), None)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token on every path but the public ones; binds the token's principal."""
    if request.path not in PUBLIC_PATHS:
        header = request.headers.get("Authorization", "")
        principal = _principal(header, request.app[CORE].settings.tokens)
        if principal is None:
            reason = "missing bearer token" if not header else "invalid bearer token"
            log.info("unauthorized", path=request.path, reason=reason, peer=request.remote)
            raise ApiError(401, "unauthorized", reason)
        request[PRINCIPAL] = principal
    return await handler(request)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON ``{"Error", "Message", ...}``; nothing leaks a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.status != 401:  # the auth middleware logged those already
            principal = request.get(PRINCIPAL)
            log.info(
                "request_rejected",
                method=request.method,
                path=request.path,
                status=exc.status,
                error=exc.code,
                reason=exc.message,
                fields=[f.field for f in exc.fields] or None,
                principal=None if principal is None else principal.name,
            )
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return json_response(exc.to_json(), exc.status, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        body = {"Error": code, "Message": exc.reason}
        allow = exc.headers.get("Allow")
        return json_response(body, exc.status, {"Allow": allow} if allow else None)
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        return json_response({"Error": "internal", "Message": "internal error"}, 500)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: counts what the client got (the error middleware's JSON answers included),
    by route template; a client that went away before the answer counts as 499."""
    start = time.perf_counter()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as exc:  # a redirect, re-raised by the error middleware
        code = exc.status
        raise
    except asyncio.CancelledError:
        code = 499
        raise
    finally:
        request.app[CORE].metrics.observe(
            route_label(request), request.method, code, time.perf_counter() - start
        )
