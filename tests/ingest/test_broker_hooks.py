"""EMQX's HTTP authentication and authorization, answered by ingest: called here exactly as
EMQX 5 calls them (POST, JSON body from its ``body`` template, our API token in its
``headers``), and the rules checked against the Mosquitto ACL that ``broker-auth`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeorder import protocol as p
from edgeorder.ingest.cli.broker_auth import render_acl
from edgeorder.ingest.domain.broker_access import acl_rules, authorize, unshared
from edgeorder.ingest.domain.mosquitto_files import Access, Acl, parse_acl
from edgeorder.ingest.store import registry
from edgeorder.ingest.store.database import Database
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web import create_api_token
from tests.ingest.support import Ingest, add_device

ROOT = p.TOPIC_ROOT
AUTHN, AUTHZ = "/api/broker/authenticate", "/api/broker/authorize"

# --- the rules: the same answers as Mosquitto's ACL file ------------------------------------

NAMES = st.sampled_from(["ingest", "dev-1", "dev-2", "other"])
LEVELS = st.sampled_from(["dev-1", "dev-2", "+", "#", "ingest", "x", ""])
CHANNELS = st.sampled_from([c.value for c in p.Channel] + ["config/other", "#", "+"])


@given(
    username=NAMES,
    device=LEVELS,
    channel=CHANNELS,
    action=st.sampled_from(["publish", "subscribe"]),
)
def test_the_rules_are_the_mosquitto_acl_files(
    username: str, device: str, channel: str, action: str
) -> None:
    topic = f"{ROOT}/{device}/{channel}"
    ours = Acl(acl_rules(["ingest"]))
    mosquitto = Acl(parse_acl(render_acl(["ingest"])))
    if action == "publish":
        # a publish names a topic, never a filter: Mosquitto refuses wildcards before its ACL
        expected = (
            "+" not in topic
            and "#" not in topic
            and mosquitto.allows(username, "c", topic, Access.WRITE)
        )
        assert authorize(ours, username, "c", "publish", topic) == expected
    else:
        expected = mosquitto.allows(username, "c", topic, Access.READ, is_filter=True)
        assert authorize(ours, username, "c", "subscribe", topic) == expected


def test_a_shared_subscription_is_judged_by_the_filter_it_shares() -> None:
    acl = Acl(acl_rules(["ingest"]))
    shared = f"$share/ingest/{ROOT}/+/events"
    assert unshared(shared) == f"{ROOT}/+/events"
    assert authorize(acl, "ingest", "w1", "subscribe", shared)
    assert not authorize(acl, "dev-1", "dev-1", "subscribe", shared)
    assert authorize(acl, "dev-1", "dev-1", "subscribe", f"$queue/{ROOT}/dev-1/status")
    for bad in ("$share/", "$share/g", "$share/g+/x", "$share//x", "$queue/"):
        assert unshared(bad) is None
        assert not authorize(acl, "ingest", "w1", "subscribe", bad)


# --- the registry lookup, on both backends -----------------------------------------------------


def test_who_may_connect(database: Database) -> None:
    mapping = p.ButtonMapping(single=p.ReorderAction(sku="X"))
    with database.open() as conn:
        registry.add_device(conn, "dev-on", mapping=mapping)
        registry.add_device(conn, "dev-off", mapping=mapping)
        registry.set_enabled(conn, "dev-off", False)
        registry.ensure_service_account(conn, "ingest", "secret")
        registry.ensure_service_account(conn, "homeassistant", "secret", role="observer")
        on = registry.broker_account(conn, "dev-on")
        assert on is not None
        assert on[1] == "device"
        assert registry.broker_account(conn, "dev-off") is None  # disabled: may not connect
        assert registry.broker_account(conn, "nobody") is None
        service = registry.broker_account(conn, "ingest")
        assert service is not None
        assert service[1] == "service"
        observer = registry.broker_account(conn, "homeassistant")
        assert observer is not None
        assert observer[1] == "observer"
        assert registry.account_roles(conn) == {"ingest": "service", "homeassistant": "observer"}


# --- over HTTP, as EMQX calls them ---------------------------------------------------------


@pytest.fixture
def token(ingest: Ingest, ingest_dir: Path) -> str:
    db = open_db(ingest_dir / "ingest.db")
    try:
        registry.ensure_service_account(db, "ingest", "ingest-secret")
        return create_api_token(db, "emqx")
    finally:
        db.conn.close()


async def emqx(ingest: Ingest, path: str, token: str | None, body: Any) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "X-Request-Source": "EMQX"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else None
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(ingest.url + path, data=data, json=None if data else body) as resp,
    ):
        doc = await resp.json(content_type=None) if resp.status == 200 else await resp.text()
        return resp.status, doc


async def test_authentication_as_emqx_asks_it(ingest: Ingest, ingest_dir: Path, token: str) -> None:
    password = add_device(ingest_dir, "emqx-01")
    allow = {"result": "allow", "is_superuser": False}
    deny = {"result": "deny", "is_superuser": False}
    body = {"username": "emqx-01", "password": password, "clientid": "emqx-01"}
    assert await emqx(ingest, AUTHN, token, body) == (200, allow)
    assert await emqx(ingest, AUTHN, token, {**body, "password": "wrong"}) == (200, deny)
    assert await emqx(ingest, AUTHN, token, {**body, "username": "nobody"}) == (200, deny)
    service = {"username": "ingest", "password": "ingest-secret", "clientid": "w1"}
    assert await emqx(ingest, AUTHN, token, service) == (200, allow)
    status, _ = await emqx(ingest, AUTHN, None, body)
    assert status == 401  # only a caller with the API token may ask
    db = open_db(ingest_dir / "ingest.db")
    registry.set_enabled(db, "emqx-01", False)
    db.conn.close()
    assert await emqx(ingest, AUTHN, token, body) == (200, deny)  # at once, no reload


async def test_authorization_as_emqx_asks_it(ingest: Ingest, ingest_dir: Path, token: str) -> None:
    add_device(ingest_dir, "emqx-02")

    async def may(username: str, action: str, topic: str) -> object:
        body = {
            "username": username,
            "clientid": username,
            "action": action,
            "topic": topic,
            "qos": "1",
            "retain": "false",
            "peerhost": "10.0.0.9",
        }
        status, doc = await emqx(ingest, AUTHZ, token, body)
        assert status == 200
        return doc["result"]

    own = f"{ROOT}/emqx-02"
    assert await may("emqx-02", "publish", f"{own}/events") == "allow"
    assert await may("emqx-02", "subscribe", f"{own}/status") == "allow"
    assert await may("emqx-02", "publish", f"{own}/status") == "deny"  # ingest's to write
    assert await may("emqx-02", "publish", f"{ROOT}/other-01/events") == "deny"
    assert await may("emqx-02", "subscribe", f"{ROOT}/+/status") == "deny"
    assert await may("ingest", "subscribe", f"$share/ingest/{ROOT}/+/events") == "allow"
    assert await may("ingest", "publish", f"{ROOT}/emqx-02/status") == "allow"
    assert await may("nobody", "publish", f"{ROOT}/nobody/events") == "deny"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"username": "emqx-03"}',
        b'{"username": 7, "action": "publish", "topic": "t"}',
        b'{"username": "emqx-03", "action": "all", "topic": "t"}',
        b'{"username": "emqx-03", "action": "publish", "topic": "' + b"x" * 20000 + b'"}',
    ],
)
async def test_unusable_requests_are_denied_never_ignored(
    ingest: Ingest, token: str, body: bytes
) -> None:
    """A 4xx would read as "ignore" to EMQX: with ``no_match = allow`` the client would pass."""
    for path in (AUTHN, AUTHZ):
        status, doc = await emqx(ingest, path, token, body)
        assert status == 200
        assert doc["result"] == "deny"
    _, text = await ingest.get("/metrics")
    assert 'edgeorder_ingest_broker_hooks_total{hook="authorize",result="deny"}' in text
