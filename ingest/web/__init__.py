"""The operator dashboard, served by ingest on its HTTP port (issue 6).

``setup_web(app)`` installs everything on ingest's ``web.Application``: the auth middleware
(session cookie or API token, CSRF), login/logout, the pages, the live SSE stream and the static
assets. ``create_api_token`` and ``ensure_operator`` are for the CLI and the demo.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from edgeorder.ingest.keys import SETTINGS_KEY
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web.access import auth_middleware, install_login_routes
from edgeorder.ingest.web.auth import create_api_token, ensure_operator
from edgeorder.ingest.web.db import WebDb
from edgeorder.ingest.web.live import LIVE_STREAMS_KEY, LiveStreams
from edgeorder.ingest.web.pages import install_pages
from edgeorder.ingest.web.state import LOGIN_DELAY_KEY, WEBDB_KEY

__all__ = ["WEBDB_KEY", "create_api_token", "ensure_operator", "setup_web"]

log = structlog.get_logger("edgeorder.ingest.web")
STATIC_DIR = Path(__file__).parent / "static"


def setup_web(app: web.Application, *, login_failure_delay_s: float = 0.5) -> None:
    """Install the dashboard on ``app`` (which must hold ``SETTINGS_KEY``); call before start.

    At start-up the database is migrated and operator ``admin`` is created or updated from
    ``Settings.admin_password`` (if set).
    """
    app.middlewares.append(auth_middleware)
    app[LOGIN_DELAY_KEY] = login_failure_delay_s
    app[WEBDB_KEY] = WebDb(app[SETTINGS_KEY].db_path)  # connections open lazily
    install_login_routes(app)
    install_pages(app)
    app.router.add_static("/static", STATIC_DIR, name="static")
    app[LIVE_STREAMS_KEY] = streams = LiveStreams()
    app.on_shutdown.append(streams.close_all)
    app.cleanup_ctx.append(_web_db)


async def _web_db(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    await asyncio.get_running_loop().run_in_executor(None, _migrate, settings.db_path)
    db = app[WEBDB_KEY]
    password = settings.admin_password
    if password is not None and password.get_secret_value():
        secret = password.get_secret_value()

        changed = await db.write(lambda conn: ensure_operator(conn, "admin", secret))
        log.info("admin_operator", changed=changed)
    try:
        yield
    finally:
        db.close()


def _migrate(path: Path) -> None:
    """Bring the schema up to date (idempotent; ingest may already have done it)."""
    open_db(path).conn.close()
