"""``create_app(settings)``: the order core as an aiohttp application."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from edgeorder.ordercore import health, routes_admin, routes_orders
from edgeorder.ordercore.core import CORE, Core, core_context
from edgeorder.ordercore.http import auth_middleware, error_middleware
from edgeorder.ordercore.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The order core app. The store opens at start-up (cleanup_ctx) and closes at shutdown.

    ``clock`` (epoch seconds) stamps orders and schedules webhook retries; tests inject one.
    """
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[CORE] = Core(settings, clock)
    app.cleanup_ctx.append(core_context)
    health.add_routes(app.router)
    routes_orders.add_routes(app.router)
    routes_admin.add_routes(app.router)
    return app
