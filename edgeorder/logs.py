"""structlog set-up, done once by the ``edgeorder`` command before any subcommand runs."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """JSON lines by default; a console renderer when stderr is a TTY (or ``fmt="console"``).

    ``level`` and ``fmt`` fall back to ``EDGEORDER_LOG_LEVEL`` / ``EDGEORDER_LOG_FORMAT``.
    """
    level_name = (level or os.environ.get("EDGEORDER_LOG_LEVEL") or "info").upper()
    numeric = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    fmt = (
        fmt
        or os.environ.get("EDGEORDER_LOG_FORMAT")
        or ("console" if sys.stderr.isatty() else "json")
    )
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (amqtt, aiohttp) log through the standard library: keep them quiet by default.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
