"""The operator dashboard, served by ingest on its HTTP port (issue 6).

``setup_web(app)`` installs everything on ingest's ``web.Application``: the auth middleware
(session cookie or API token, CSRF), login/logout, the pages, the live SSE stream and the static
assets. ``create_api_token`` is for the CLI and the demo.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from edgeorder.ingest.keys import SETTINGS_KEY
from edgeorder.ingest.web.access import auth_middleware, install_login_routes
from edgeorder.ingest.web.auth import Passwords, create_api_token, ensure_operator
from edgeorder.ingest.web.live import LIVE_STREAMS_KEY, LiveStreams
from edgeorder.ingest.web.pages import install_pages
from edgeorder.ingest.web.state import LOGIN_DELAY_KEY, PASSWORDS_KEY, STORE_KEY

__all__ = ["STORE_KEY", "create_api_token", "setup_web"]

log = structlog.get_logger("edgeorder.ingest.web")
STATIC_DIR = Path(__file__).parent / "static"


def setup_web(app: web.Application, *, login_failure_delay_s: float = 0.5) -> None:
    """Install the dashboard on ``app``; call before start.

    ``app`` holds ``SETTINGS_KEY`` and ``STORE_KEY`` (the service's writer and reader pool,
    running by the time this app's start-up reaches the dashboard). At start-up operator
    ``admin`` is created or updated from ``Settings.admin_password`` (if set).
    """
    app.middlewares.append(auth_middleware)
    app[LOGIN_DELAY_KEY] = login_failure_delay_s
    app[PASSWORDS_KEY] = Passwords(app[SETTINGS_KEY].login_hash_workers)
    install_login_routes(app)
    install_pages(app)
    app.router.add_static("/static", STATIC_DIR, name="static")
    app[LIVE_STREAMS_KEY] = streams = LiveStreams()
    app.on_shutdown.append(streams.close_all)
    app.cleanup_ctx.append(_operators)


async def _operators(app: web.Application) -> AsyncIterator[None]:
    password = app[SETTINGS_KEY].admin_password
    passwords = app[PASSWORDS_KEY]
    try:
        if password is not None and password.get_secret_value():
            changed = await ensure_operator(
                app[STORE_KEY], passwords, "admin", password.get_secret_value()
            )
            log.info("admin_operator", changed=changed)
        yield
    finally:
        passwords.close()
