"""Real receivers of alert notifications for the tests: an SMTP server (aiosmtpd, in its own
thread) and a webhook endpoint (aiohttp, in the test's loop) that verifies each signature."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from edgeorder.ingest.orders.state_sync import SIGNATURE_HEADER, TIMESTAMP_HEADER, refusal
from tests.support.net import free_port

SECRET = "alert-webhook-secret"


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free port; ``user``/``password`` given: AUTH required (after STARTTLS
    with a ``tls_context``, else without TLS)."""

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.mailbox = _Mailbox()
        self.port = free_port()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if user is not None:

            def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
                ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                    user.encode(),
                    (password or "").encode(),
                )
                if ok:
                    self.logins.append(user)
                return AuthResult(success=ok)

            kwargs = {
                "authenticator": check,
                "auth_required": True,
                "auth_require_tls": tls_context is not None,
            }
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **kwargs)

    @property
    def messages(self) -> list[Message]:
        return self.mailbox.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class WebhookReceiver:
    """Answers ``status`` (200 unless a test says otherwise); keeps the verified bodies."""

    secret: str = SECRET
    port: int = field(default_factory=free_port)
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    calls: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        why = refusal(
            self.secret,
            body,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            now=time.time(),
            tolerance_s=300,
        )
        if why is not None:
            self.refused.append(why)
            return web.Response(status=401, text=why)
        if self.status != 200:
            return web.Response(status=self.status, text="not now")
        self.bodies.append(json.loads(body))
        self.arrived.set()
        return web.Response(text="ok")

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def transitions(self) -> list[tuple[str, str, str | None]]:
        """(transition, kind, device_id) of every single-alert message, in order."""
        return [
            (b["transition"], b["alert"]["kind"], b["alert"]["device_id"])
            for b in self.bodies
            if b["type"] == "alert"
        ]
