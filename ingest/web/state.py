"""Typed ``web.AppKey``s of what the dashboard keeps on the ingest application."""

from __future__ import annotations

from aiohttp import web

from edgeorder.ingest.keys import STORE_KEY
from edgeorder.ingest.web.auth import Passwords

__all__ = ["LOGIN_DELAY_KEY", "PASSWORDS_KEY", "STORE_KEY"]

PASSWORDS_KEY = web.AppKey("web_passwords", Passwords)
LOGIN_DELAY_KEY = web.AppKey("web_login_delay_s", float)
"""Minimum duration of a failed login, in seconds (tests set it low)."""
