"""EMQX's HTTP authentication and authorization, answered from ingest's registry.

An EMQX cluster (``deploy/cluster/``) asks ingest whether a client may connect and whether it
may publish or subscribe, so devices provisioned, disabled or re-keyed through any worker are
refused or let in at once, with no password file to copy to the broker nodes. The requests and
answers are EMQX 5's documented format (``access-control/authn/http.md``,
``authz/http.md``), configured as POST with a JSON body:

- ``POST /api/broker/authenticate`` ``{"username", "password", "clientid"}`` ->
  ``{"result": "allow" | "deny", "is_superuser": false}``: the password checked against the
  registry's ``$7$`` hash of an enabled device or a service account;
- ``POST /api/broker/authorize`` ``{"username", "clientid", "action", "topic"}`` ->
  ``{"result": "allow" | "deny"}``: ``ingest.domain.broker_access``, the rules Mosquitto's ACL
  file has (a shared subscription is judged by the filter it shares).

Both are operations of the REST API (``BROKER_OPERATIONS``, in its OpenAPI document), behind
its bearer token (EMQX sends ``Authorization: Bearer <token>`` from its
``headers``). Anything unusable -- not JSON, a missing or oversized field, an unknown action --
is answered ``deny`` with 200, never a 4xx: EMQX reads a 4xx as "ignore", and an authorizer
chain that ends in ``no_match = allow`` would then let the client through. Every answer is
counted (``edgeorder_ingest_broker_hooks_total{hook, result}``); refusals are logged.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel

from edgeorder.ingest.domain import broker_access
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Acl
from edgeorder.ingest.keys import METRICS_KEY, SETTINGS_KEY, STORE_KEY
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.registry import broker_account
from edgeorder.ingest.web.openapi import Operation, Reply

__all__ = [
    "AUTHENTICATE_PATH",
    "AUTHORIZE_PATH",
    "BROKER_OPERATIONS",
    "AuthenticateAnswer",
    "AuthorizeAnswer",
]

log = structlog.get_logger(__name__)

AUTHENTICATE_PATH = "/api/broker/authenticate"
AUTHORIZE_PATH = "/api/broker/authorize"
_BODY_MAX = 16 * 1024
_FIELD_MAX = 65535  # MQTT strings are at most 64 KiB
_ACTIONS = frozenset({"publish", "subscribe"})


class _Unusable(ValueError):
    """A request no answer but ``deny`` fits."""


def _fields(raw: bytes, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The string fields ``names`` (required) and ``optional`` ("" when absent) of a body."""
    if len(raw) > _BODY_MAX:
        raise _Unusable("body too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _Unusable("not JSON") from exc
    if not isinstance(body, dict):
        raise _Unusable("not a JSON object")
    out = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or len(value) > _FIELD_MAX:
            raise _Unusable(f"{name} missing or not a string")
        out[name] = value
    for name in optional:
        value = body.get(name, "")
        out[name] = value[:_FIELD_MAX] if isinstance(value, str) else ""
    return out


def _check_password(conn: Conn, username: str, password: str) -> bool:
    account = broker_account(conn, username)
    return account is not None and verify_password(account[0], password)


def _may(
    conn: Conn, username: str, client_id: str, action: str, topic: str, ha_prefix: str
) -> bool:
    account = broker_account(conn, username)
    if account is None:
        return False
    role = account[1]
    acl = Acl(
        broker_access.acl_rules(
            [username] if role == "service" else [],
            ha_prefix,
            observers=[username] if role == "observer" else [],
        )
    )
    return broker_access.authorize(
        acl,
        username,
        client_id,
        "publish" if action == "publish" else "subscribe",
        topic,
        may_share=role != "observer",
    )


class AuthenticateAnswer(BaseModel):
    """EMQX's HTTP authenticator's answer (``access-control/authn/http.md``)."""

    result: Literal["allow", "deny"]
    is_superuser: bool


class AuthorizeAnswer(BaseModel):
    """EMQX's HTTP authorizer's answer (``access-control/authz/http.md``)."""

    result: Literal["allow", "deny"]


def _answer(request: web.Request, hook: str, allowed: bool, **extra: Any) -> web.Response:
    result = "allow" if allowed else "deny"
    request.app[METRICS_KEY].broker_hooks.labels(hook=hook, result=result).inc()
    return web.json_response({"result": result, **extra})


async def authenticate(request: web.Request) -> web.Response:
    """``POST /api/broker/authenticate`` (module docstring)."""
    try:
        f = _fields(await request.read(), ("username", "password"))
    except _Unusable as exc:
        log.warning("broker.authenticate_unusable", reason=str(exc), remote=request.remote)
        return _answer(request, "authenticate", False, is_superuser=False)
    ok = bool(
        await request.app[STORE_KEY].read(
            lambda c: _check_password(c, f["username"], f["password"])
        )
    )
    if not ok:
        log.info("broker.authenticate_refused", username=f["username"][:64])
    return _answer(request, "authenticate", ok, is_superuser=False)


async def authorize(request: web.Request) -> web.Response:
    """``POST /api/broker/authorize`` (module docstring)."""
    try:
        f = _fields(await request.read(), ("username", "action", "topic"), ("clientid",))
        if f["action"] not in _ACTIONS:
            raise _Unusable(f"unknown action {f['action'][:32]!r}")
    except _Unusable as exc:
        log.warning("broker.authorize_unusable", reason=str(exc), remote=request.remote)
        return _answer(request, "authorize", False)
    prefix = request.app[SETTINGS_KEY].ha_discovery_prefix
    ok = bool(
        await request.app[STORE_KEY].read(
            lambda c: _may(c, f["username"], f["clientid"], f["action"], f["topic"], prefix)
        )
    )
    if not ok:
        log.info(
            "broker.authorize_refused",
            username=f["username"][:64],
            action=f["action"],
            topic=f["topic"][:200],
        )
    return _answer(request, "authorize", ok)


_DESCRIPTION = (
    "Called by EMQX, not by people: the body is EMQX's request template (POST, JSON). "
    "Anything this API cannot use is answered deny with 200, never an error status, which "
    "EMQX would read as 'ignore'."
)
BROKER_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        AUTHENTICATE_PATH,
        authenticate,
        "may this MQTT client connect? (EMQX HTTP authentication)",
        (Reply(200, AuthenticateAnswer, "allow or deny"),),
        description=_DESCRIPTION
        + ' Body: {"username": str, "password": str, "clientid": str}; the password is checked '
        "against the registry's hash of an enabled device or a service account.",
        tag="broker",
    ),
    Operation(
        "POST",
        AUTHORIZE_PATH,
        authorize,
        "may this MQTT client publish or subscribe to this topic? (EMQX HTTP authorization)",
        (Reply(200, AuthorizeAnswer, "allow or deny"),),
        description=_DESCRIPTION
        + ' Body: {"username": str, "clientid": str, "action": "publish"|"subscribe", '
        '"topic": str}; the rules of the Mosquitto ACL broker-auth writes.',
        tag="broker",
    ),
]
