"""Typed ``web.AppKey``s of what the dashboard keeps on the ingest application."""

from __future__ import annotations

from aiohttp import web

from edgeorder.ingest.web.db import WebDb

__all__ = ["LOGIN_DELAY_KEY", "WEBDB_KEY"]

WEBDB_KEY = web.AppKey("web_db", WebDb)
LOGIN_DELAY_KEY = web.AppKey("web_login_delay_s", float)
"""Minimum duration of a failed login, in seconds (tests set it low)."""
