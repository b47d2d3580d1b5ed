"""``create_app(settings)``: the order core as an aiohttp application."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from edgeorder.ordercore.core import CORE, Core, core_context
from edgeorder.ordercore.endpoints import register
from edgeorder.ordercore.http import (
    ProtocolErrorLogger,
    auth_middleware,
    error_middleware,
    metrics_middleware,
)
from edgeorder.ordercore.openapi import ENDPOINTS
from edgeorder.ordercore.settings import Settings

__all__ = ["PROTOCOL_ERRORS", "create_app"]

PROTOCOL_ERRORS = web.AppKey("protocol_errors", ProtocolErrorLogger)


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The order core app. The store opens at start-up (cleanup_ctx) and closes at shutdown.

    ``clock`` (epoch seconds) stamps orders and schedules webhook retries; tests inject one.
    """
    protocol_errors = ProtocolErrorLogger()
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, auth_middleware],
        handler_args={"logger": protocol_errors},
    )
    app[CORE] = Core(settings, clock)
    app[PROTOCOL_ERRORS] = protocol_errors
    app.cleanup_ctx.append(core_context)
    register(app.router, ENDPOINTS)
    return app
