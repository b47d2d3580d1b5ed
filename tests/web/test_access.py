"""Access control over real HTTP: every route needs a session (or API token), every
state-changing request needs the CSRF token, failed logins lock the account."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgeorder.ingest.bus import Bus
from edgeorder.ingest.store.db import connect
from edgeorder.ingest.web import create_api_token
from edgeorder.ingest.web.access import COOKIE_NAME, FAILED_LOGIN, is_public_path
from edgeorder.ingest.web.api import openapi_document
from edgeorder.ingest.web.auth import ensure_operator
from edgeorder.ingest.web.state import PASSWORDS_KEY
from tests.support.net import raw_http
from tests.web.conftest import WebEnv, make_app, make_settings
from tests.web.support import ADMIN_PASSWORD, RecordingSimulator, add_device

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def concrete_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every registered route, path parameters filled with sample values,
    so a route added later is covered without touching this test."""
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path") or info.get("prefix")
        if template is None or route.method == "HEAD":
            continue
        path = _PARAM.sub(
            lambda m: "1" if "id" in m.group(1) and "device" not in m.group(1) else "sample-01",
            str(template),
        )
        out.add((route.method, path))
    return sorted(out)


def protected_routes(app: web.Application) -> list[tuple[str, str]]:
    return [(m, p) for m, p in concrete_routes(app) if not is_public_path(p)]


async def test_route_enumeration_sees_the_dashboard(webenv: WebEnv) -> None:
    routes = concrete_routes(webenv.app)
    for expected in (
        ("GET", "/"),
        ("GET", "/devices/sample-01"),
        ("POST", "/provision"),
        ("POST", "/buffer/1/discard"),
        ("GET", "/live"),
    ):
        assert expected in routes


async def test_every_route_refuses_a_request_without_session(webenv: WebEnv) -> None:
    routes = protected_routes(webenv.app)
    assert len(routes) >= 10
    for method, path in routes:
        resp = await webenv.client.request(method, path, allow_redirects=False)
        if path.startswith("/api/"):
            assert resp.status == 401, (method, path)
        else:
            assert resp.status == 303, (method, path, resp.status)
            assert resp.headers["Location"].startswith("/login?next="), (method, path)


async def test_unknown_paths_and_bad_tokens_are_refused_too(webenv: WebEnv) -> None:
    resp = await webenv.client.get("/api/nothing-here", allow_redirects=False)
    assert resp.status == 401
    assert (await resp.json())["Error"] == "unauthorized"
    resp = await webenv.client.get(
        "/", headers={"Authorization": "Bearer nope"}, allow_redirects=False
    )
    assert resp.status == 303
    resp = await webenv.client.get("/", cookies={COOKIE_NAME: "forged"}, allow_redirects=False)
    assert resp.status == 303
    # A path that only looks public after normalisation is not public.
    resp = await webenv.client.get("/static/../", allow_redirects=False)
    assert resp.status in (303, 403, 404)


async def test_public_routes_need_no_session(webenv: WebEnv) -> None:
    resp = await webenv.client.get("/login")
    assert resp.status == 200
    assert 'name="password"' in await resp.text()
    resp = await webenv.client.get("/static/app.css")
    assert resp.status == 200


async def test_every_post_without_csrf_token_is_refused(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "sample-01")
    await webenv.login()
    posts = [(m, p) for m, p in protected_routes(webenv.app) if m not in ("GET", "OPTIONS")]
    assert len(posts) >= 8
    for method, path in posts:
        resp = await webenv.client.request(
            method, path, data={"click": "single"}, allow_redirects=False
        )
        assert resp.status == 403, (method, path, resp.status)
        resp = await webenv.client.request(
            method, path, data={"csrf_token": "wrong"}, allow_redirects=False
        )
        assert resp.status == 403, (method, path, resp.status)
        resp = await webenv.client.request(
            method, path, headers={"X-CSRF-Token": "wrong"}, allow_redirects=False
        )
        assert resp.status == 403, (method, path, resp.status)


async def test_the_api_refuses_in_its_one_error_shape(webenv: WebEnv) -> None:
    """401 and 403 of the auth middleware answer as every API error does (``ErrorOut``), and
    the document says so: one error schema, no second shape on the same paths."""
    resp = await webenv.client.get("/api/devices", allow_redirects=False)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    bare = await webenv.client.get("/api", allow_redirects=False)  # no slash: the same shape
    assert (bare.status, (await bare.json())["Error"]) == (401, "unauthorized")
    body = await resp.json()
    assert set(body) == {"Error", "Message"}
    assert body["Error"] == "unauthorized"
    await webenv.login()
    resp = await webenv.client.post("/api/devices", json={}, allow_redirects=False)
    body = await resp.json()
    assert (resp.status, body["Error"]) == (403, "forbidden")
    assert set(body) == {"Error", "Message"}
    assert "CSRF" in body["Message"]
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    assert "AuthErrorOut" not in schemas
    assert "Error" in schemas["ErrorOut"]["required"]
    answers = [op["responses"] for ops in doc["paths"].values() for op in ops.values()]
    refs = {
        answer["content"]["application/json"]["schema"]["$ref"]
        for responses in answers
        for code, answer in responses.items()
        if code >= "400"
    }
    assert "#/components/schemas/ErrorOut" in refs
    for ref in refs:  # ErrorOut, or one that adds fields to it (a bulk change's Devices)
        required = schemas[ref.removeprefix("#/components/schemas/")]["required"]
        assert {"Error", "Message"} <= set(required), ref


async def test_post_with_csrf_token_goes_through(webenv: WebEnv) -> None:
    add_device(webenv.db_path, "sample-01")
    csrf = await webenv.login()
    resp = await webenv.client.post(
        "/devices/sample-01/enabled",
        data={"csrf_token": csrf, "enabled": "0"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await webenv.client.post(
        "/devices/sample-01/enabled",
        data={"enabled": "1"},
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert resp.status == 200
    assert (await resp.json())["enabled"] is True
    conn = connect(webenv.db_path, readonly=True)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit WHERE actor = 'admin'")]
    conn.close()
    assert actions == ["device.disable", "device.enable"]


async def test_session_cookie_flags(webenv: WebEnv) -> None:
    resp = await webenv.client.post(
        "/login", data={"username": "admin", "password": ADMIN_PASSWORD}, allow_redirects=False
    )
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # cookie_secure is off in this app


async def test_secure_cookie_when_configured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cookie_secure=True)
    bus = Bus()
    app = make_app(settings, bus, RecordingSimulator(settings.db_path, bus))
    async with TestClient(TestServer(app)) as client:
        resp = await client.post(
            "/login", data={"username": "admin", "password": ADMIN_PASSWORD}, allow_redirects=False
        )
        assert resp.status == 303
        assert "Secure" in resp.headers["Set-Cookie"]


async def _refusal(webenv: WebEnv, username: str, password: str) -> tuple[int, str, bool]:
    resp = await webenv.client.post(
        "/login", data={"username": username, "password": password}, allow_redirects=False
    )
    page = (await resp.text()).replace(f'value="{username}"', 'value="USER"')
    return resp.status, page, "Set-Cookie" in resp.headers


async def test_login_lockout_after_max_failures(webenv: WebEnv) -> None:
    for _ in range(webenv.settings.login_max_failures):
        assert (await _refusal(webenv, "admin", "x"))[0] == 401
    # Now even the right password is refused, and no session cookie is set.
    status, page, cookie = await _refusal(webenv, "admin", ADMIN_PASSWORD)
    assert (status, cookie) == (401, False)
    assert FAILED_LOGIN in page
    conn = connect(webenv.db_path, readonly=True)
    (locked_until,) = conn.execute(
        "SELECT locked_until FROM operators WHERE username = 'admin'"
    ).fetchone()
    conn.close()
    assert locked_until is not None  # the lockout is still there: it just does not show


async def test_refusals_do_not_tell_which_usernames_exist(webenv: WebEnv) -> None:
    """Unknown user, wrong password, locked account: the very same answer (issue 11 §3)."""
    unknown = await _refusal(webenv, "mallory", "x")
    wrong = await _refusal(webenv, "admin", "x")
    for _ in range(webenv.settings.login_max_failures):
        await _refusal(webenv, "admin", "x")
    locked = await _refusal(webenv, "admin", ADMIN_PASSWORD)
    assert unknown == wrong == locked
    assert unknown[0] == 401
    assert FAILED_LOGIN in unknown[1]


async def test_logout_ends_the_session(webenv: WebEnv) -> None:
    csrf = await webenv.login()
    resp = await webenv.client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    resp = await webenv.client.get("/", allow_redirects=False)
    assert resp.status == 303


async def test_login_never_redirects_off_site(webenv: WebEnv) -> None:
    resp = await webenv.client.post(
        "/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/"


async def test_api_token_opens_pages_and_api(webenv: WebEnv) -> None:
    token = await webenv.store.write(lambda conn: create_api_token(conn, "demo"))
    resp = await webenv.client.get(
        "/", headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
    )
    assert resp.status == 200
    # No CSRF token is needed with a bearer token: there is no ambient credential.
    add_device(webenv.db_path, "sample-01")
    resp = await webenv.client.post(
        "/devices/sample-01/enabled",
        data={"enabled": "0"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert resp.status == 200
    conn = connect(webenv.db_path, readonly=True)
    actor = conn.execute("SELECT actor FROM audit WHERE action = 'device.disable'").fetchone()
    conn.close()
    assert actor == ("token:demo",)


async def test_credentials_that_are_not_utf8_are_refused_not_a_crash(webenv: WebEnv) -> None:
    """Header bytes that are not UTF-8 reach the hash of a token or cookie as surrogates: they
    match nothing and are refused (401 in the API's shape; the login page), never a 500."""
    server = webenv.client.server
    host, port = str(server.host), int(server.port or 0)
    status, answer = await raw_http(
        host, port, b"GET /api/devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe"
    )
    assert status == 401, answer
    assert b'"Error":"unauthorized"' in answer.replace(b" ", b"")
    status, answer = await raw_http(
        host, port, b"GET / HTTP/1.1\r\nHost: x\r\nCookie: edgeorder_session=\xff"
    )
    assert status == 303, answer
    assert b"Location: /login" in answer


async def test_the_bearer_scheme_is_case_insensitive(webenv: WebEnv) -> None:
    token = await webenv.store.write(lambda conn: create_api_token(conn, "demo"))
    for scheme in ("bearer", "BEARER"):
        resp = await webenv.client.get(
            "/", headers={"Authorization": f"{scheme} {token}"}, allow_redirects=False
        )
        assert resp.status == 200, scheme


async def test_admin_password_from_settings_is_applied_at_start(webenv: WebEnv) -> None:
    await webenv.login()  # the fixture's app created admin from Settings.admin_password
    passwords = webenv.app[PASSWORDS_KEY]
    changed = await ensure_operator(webenv.store, passwords, "admin", ADMIN_PASSWORD)
    assert changed is False  # same password: no re-hash
    resp = await webenv.client.get("/", allow_redirects=False)
    assert resp.status == 200  # the session lives on
    changed = await ensure_operator(webenv.store, passwords, "admin", "another password")
    assert changed is True
    resp = await webenv.client.get("/", allow_redirects=False)
    assert resp.status == 303  # a changed password ends the sessions of the old one
    resp = await webenv.client.post(
        "/login", data={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert resp.status == 401


async def test_pages_forbid_framing_and_foreign_content(webenv: WebEnv) -> None:
    for resp in (
        await webenv.client.get("/login"),
        await webenv.client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD}),
    ):
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["X-Frame-Options"] == "DENY"


async def test_a_new_login_replaces_the_previous_session(webenv: WebEnv) -> None:
    await webenv.login()
    first = webenv.client.session.cookie_jar.filter_cookies(webenv.client.make_url("/"))
    old_cookie = first[COOKIE_NAME].value
    await webenv.login()
    resp = await webenv.client.get("/", cookies={COOKIE_NAME: old_cookie}, allow_redirects=False)
    assert resp.status == 303  # the old session id is gone
