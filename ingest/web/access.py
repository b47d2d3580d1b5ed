"""Who may do what: the auth middleware (session or API token, CSRF) and login/logout.

Public: ``/login``, ``/healthz``, ``/livez``, ``/metrics``, ``/static/*`` and ``/webhooks/*``
(signed by the order platform, checked by ingest). Everything else needs a session cookie or an
``Authorization: Bearer`` API token; unauthenticated ``/api/*`` answers 401, pages redirect to
``/login``. A state-changing request made with a session must carry the session's CSRF token
(form field ``csrf_token`` or header ``X-CSRF-Token``), else 403. Bearer requests carry no
ambient credential, so they need no CSRF token.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

import structlog
from aiohttp import web

from edgeorder.ingest.errors import ForbiddenError, UnauthorizedError
from edgeorder.ingest.keys import SETTINGS_KEY
from edgeorder.ingest.web import auth
from edgeorder.ingest.web.markup import Markup, attrs, esc, html_response, layout
from edgeorder.ingest.web.openapi import error_response
from edgeorder.ingest.web.state import LOGIN_DELAY_KEY, PASSWORDS_KEY, STORE_KEY

__all__ = [
    "COOKIE_NAME",
    "Identity",
    "auth_middleware",
    "identity_of",
    "install_login_routes",
    "is_public_path",
    "safe_next",
    "see_other",
]

log = structlog.get_logger("edgeorder.ingest.web.access")

COOKIE_NAME = "edgeorder_session"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC_EXACT = frozenset({"/login", "/healthz", "/livez", "/metrics"})
_PUBLIC_PREFIXES = ("/static/", "/webhooks/")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Identity:
    """The caller: an operator with a session, or a named API token."""

    name: str
    session: auth.Session | None = None

    @property
    def actor(self) -> str:
        """How audit rows name the caller."""
        return self.name if self.session is not None else f"token:{self.name}"

    @property
    def csrf_token(self) -> str | None:
        return None if self.session is None else self.session.csrf_token


_IDENTITY = web.RequestKey("edgeorder_identity", Identity)


def is_public_path(path: str) -> bool:
    """True for the routes that need no session (see the module docstring)."""
    return path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIXES) or path == "/static"


def identity_of(request: web.Request) -> Identity:
    """The authenticated caller of a request that passed the middleware."""
    return request[_IDENTITY]


def _route_path(request: web.Request) -> str:
    """The matched resource's canonical path (immune to ``..`` tricks), else the raw path."""
    resource = request.match_info.route.resource
    if resource is None:
        return request.path
    canonical = resource.canonical
    return canonical + "/" if canonical in ("/static", "/webhooks") else canonical


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public_path(_route_path(request)) and is_public_path(request.path):
        return await handler(request)
    identity = await _authenticate(request)
    if identity is None:
        return _refuse(request)
    request[_IDENTITY] = identity
    if request.method not in _SAFE_METHODS and identity.session is not None:
        presented = request.headers.get("X-CSRF-Token")
        if presented is None and request.content_type in _FORM_TYPES:
            field = (await request.post()).get("csrf_token")
            presented = field if isinstance(field, str) else None
        if not auth.csrf_matches(identity.session, presented):
            log.warning(
                "csrf_refused",
                path=request.path,
                user=identity.name,
                reason="missing" if presented is None else "mismatch",
            )
            return _error(request, 403, "missing or wrong CSRF token")
    return await handler(request)


async def _authenticate(request: web.Request) -> Identity | None:
    db = request.app[STORE_KEY]
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":  # the scheme is case-insensitive (RFC 9110 11.1)
        token = credentials.strip()
        name = await db.read(lambda conn: auth.verify_api_token(conn, token)) if token else None
        if name is None:
            log.info("api_token_refused", path=request.path)
        return None if name is None else Identity(name)
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    session = await db.read(lambda conn: auth.lookup_session(conn, cookie))
    return None if session is None else Identity(session.username, session)


def _refuse(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/api/") or request.path == "/api":
        return error_response(
            UnauthorizedError(
                "log in or send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="edgeorder"'},
            )
        )
    target = request.path_qs if request.method == "GET" else "/"
    resp = see_other(f"/login?next={quote(target, safe='')}")
    if COOKIE_NAME in request.cookies:
        resp.del_cookie(COOKIE_NAME, path="/")
    return resp


def see_other(location: str) -> web.Response:
    """A 303 redirect (after a form POST the browser GETs ``location``)."""
    return web.Response(status=303, headers={"Location": location})


def _error(request: web.Request, status: int, detail: str) -> web.Response:
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        return error_response(ForbiddenError(detail, status=status))
    return web.Response(text=f"{status}: {detail}\n", status=status)


# --- login / logout ------------------------------------------------------------------------


_NEXT_PATH = re.compile(r"/(?:devices/[A-Za-z0-9_-]{1,64}|buffer|provision|alerts)?")
_NEXT_QUERY = re.compile(r"[A-Za-z0-9._~=&%+-]{0,500}")
FAILED_LOGIN = "Wrong username or password, or too many failed attempts (wait a few minutes)."
"""The one answer to every failed login: it must not tell which usernames exist."""


def safe_next(value: object) -> str:
    """Where to go after login: one of the dashboard's own pages (an allow-list: ``/``,
    ``/devices/ID``, ``/buffer``, ``/provision``, ``/alerts``, with a plain query string), else
    ``/``.

    Nothing a browser could read as another host gets through (``//evil``, ``/\\evil``,
    ``/%09/evil``, ``https:``, encoded forms): only the listed paths and characters do.
    """
    if not isinstance(value, str):
        return "/"
    path, mark, query = value.partition("?")
    if not _NEXT_PATH.fullmatch(path) or (mark and not _NEXT_QUERY.fullmatch(query)):
        return "/"
    return value


def _login_page(next_url: str, message: str = "", username: str = "") -> Markup:
    note = Markup(f'<p class="error" role="alert">{esc(message)}</p>') if message else Markup("")
    body = Markup(
        f'{note}<form method="post" action="/login" class="card login">'
        f'<input type="hidden" name="next" value="{esc(next_url)}">'
        f'<label>Username <input name="username" autocomplete="username" required'
        f"{attrs(value=username or None)} autofocus></label>"
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button></form>'
    )
    return layout("Log in", body, user=None, csrf=None)


async def login_form(request: web.Request) -> web.Response:
    page = _login_page(safe_next(request.query.get("next")))
    return html_response(page)


async def login_submit(request: web.Request) -> web.StreamResponse:
    started = time.monotonic()
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_url = safe_next(form.get("next"))
    settings = request.app[SETTINGS_KEY]
    attempt = auth.LoginAttempt(
        username=username[:200],
        password=password,
        max_failures=settings.login_max_failures,
        lockout_s=settings.login_lockout_s,
        session_ttl_s=settings.session_ttl_s,
        previous_cookie=request.cookies.get(COOKIE_NAME),
    )
    result = await auth.login(request.app[STORE_KEY], request.app[PASSWORDS_KEY], attempt)
    if result.cookie is None:
        # A floor on every failure's duration: timing tells nothing, guessing is slow.
        delay = request.app[LOGIN_DELAY_KEY] - (time.monotonic() - started)
        if delay > 0:
            await asyncio.sleep(delay)
        log.warning(
            "login_failed",
            user=attempt.username,
            reason=result.outcome.value,
            locked_until=result.locked_until,
            peer=request.remote,
        )
        return html_response(_login_page(next_url, FAILED_LOGIN, attempt.username), status=401)
    log.info("login", user=attempt.username, peer=request.remote)
    resp = see_other(next_url)
    resp.set_cookie(
        COOKIE_NAME,
        result.cookie,
        max_age=settings.session_ttl_s,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
    )
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        await request.app[STORE_KEY].write(lambda conn: auth.delete_session(conn, cookie))
    log.info("logout", user=identity_of(request).name)
    resp = see_other("/login")
    resp.del_cookie(COOKIE_NAME, path="/")
    return resp


def install_login_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_form, name="login")
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout, name="logout")
