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

Both are behind the API's bearer token (EMQX sends ``Authorization: Bearer <token>`` from its
``headers``). Anything unusable -- not JSON, a missing or oversized field, an unknown action --
is answered ``deny`` with 200, never a 4xx: EMQX reads a 4xx as "ignore", and an authorizer
chain that ends in ``no_match = allow`` would then let the client through. Every answer is
counted (``edgeorder_ingest_broker_hooks_total{hook, result}``); refusals are logged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from edgeorder.ingest.domain.broker_access import acl_rules, authorize
from edgeorder.ingest.domain.credentials import verify_password
from edgeorder.ingest.domain.mosquitto_files import Acl
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.store.database import Conn
from edgeorder.ingest.store.registry import broker_account

__all__ = ["AUTHENTICATE_PATH", "AUTHORIZE_PATH", "BrokerHooks"]

log = structlog.get_logger(__name__)

AUTHENTICATE_PATH = "/api/broker/authenticate"
AUTHORIZE_PATH = "/api/broker/authorize"
_BODY_MAX = 16 * 1024
_FIELD_MAX = 65535  # MQTT strings are at most 64 KiB
_ACTIONS = frozenset({"publish", "subscribe"})

Read = Callable[[Callable[[Conn], Any]], Awaitable[Any]]


class _Unusable(ValueError):
    """A request no answer but ``deny`` fits."""


def _fields(raw: bytes, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The string fields ``names`` (required) and ``optional`` ("" when absent) of a body."""
    if len(raw) > _BODY_MAX:
        raise _Unusable("body too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
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


def _may(conn: Conn, username: str, client_id: str, action: str, topic: str) -> bool:
    account = broker_account(conn, username)
    if account is None:
        return False
    acl = Acl(acl_rules([username] if account[1] else []))
    return authorize(
        acl, username, client_id, "publish" if action == "publish" else "subscribe", topic
    )


class BrokerHooks:
    """The two routes; ``read`` runs a registry query on the service's reader pool."""

    def __init__(self, read: Read, metrics: Metrics) -> None:
        self._read, self._metrics = read, metrics

    def install(self, app: web.Application) -> None:
        app.router.add_post(AUTHENTICATE_PATH, self.authenticate)
        app.router.add_post(AUTHORIZE_PATH, self.authorize)

    def _answer(self, hook: str, allowed: bool, **extra: Any) -> web.Response:
        result = "allow" if allowed else "deny"
        self._metrics.broker_hooks.labels(hook=hook, result=result).inc()
        return web.json_response({"result": result, **extra})

    async def authenticate(self, request: web.Request) -> web.Response:
        try:
            f = _fields(await request.read(), ("username", "password"))
        except _Unusable as exc:
            log.warning("broker.authenticate_unusable", reason=str(exc), remote=request.remote)
            return self._answer("authenticate", False, is_superuser=False)
        ok = bool(await self._read(lambda c: _check_password(c, f["username"], f["password"])))
        if not ok:
            log.info("broker.authenticate_refused", username=f["username"][:64])
        return self._answer("authenticate", ok, is_superuser=False)

    async def authorize(self, request: web.Request) -> web.Response:
        try:
            f = _fields(await request.read(), ("username", "action", "topic"), ("clientid",))
            if f["action"] not in _ACTIONS:
                raise _Unusable(f"unknown action {f['action'][:32]!r}")
        except _Unusable as exc:
            log.warning("broker.authorize_unusable", reason=str(exc), remote=request.remote)
            return self._answer("authorize", False)
        body = json.loads(await request.read())
        client_id = body.get("clientid") if isinstance(body.get("clientid"), str) else ""
        ok = bool(
            await self._read(lambda c: _may(c, f["username"], client_id, f["action"], f["topic"]))
        )
        if not ok:
            log.info(
                "broker.authorize_refused",
                username=f["username"][:64],
                action=f["action"],
                topic=f["topic"][:200],
            )
        return self._answer("authorize", ok)
