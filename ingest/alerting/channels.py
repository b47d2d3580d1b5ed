"""Where alert notifications go: a signed webhook (aiohttp) and e-mail (stdlib ``smtplib`` in
a thread). A channel sends one message or raises ``DeliveryError``; retrying, caps and
bookkeeping are the notifier's (``ingest.alerting.notifier``).

The webhook is signed as the order core's webhooks are (``kit.signing``):
``X-Edgeorder-Timestamp: <unix seconds>`` and ``X-Edgeorder-Signature: sha256=<hex
HMAC-SHA256(secret, "<timestamp>." + body)>``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import Any, Protocol

import aiohttp
import structlog

from edgeorder import protocol as p
from edgeorder.ingest.alerting import messages
from edgeorder.kit import signing
from edgeorder.kit.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["Channel", "DeliveryError", "EmailChannel", "WebhookChannel"]

log = structlog.get_logger(__name__)


class DeliveryError(Exception):
    """A message did not reach its channel (retried by the notifier)."""


Item = tuple[str, dict[str, Any]]
"""(transition, alert)."""


class Channel(Protocol):
    name: str

    async def send(self, transition: str, alert: dict[str, Any]) -> None: ...

    async def send_summary(self, items: Sequence[Item]) -> None: ...

    async def close(self) -> None: ...


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url, self._secret, self._clock = url, secret, clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, transition: str, alert: dict[str, Any]) -> None:
        await self._post(messages.alert_json(transition, alert, p.format_ts(p.utcnow())))

    async def send_summary(self, items: Sequence[Item]) -> None:
        await self._post(messages.summary_json(items, p.format_ts(p.utcnow())))

    async def _post(self, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        at = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(at),
            SIGNATURE_HEADER: signing.sign(self._secret, body, at),
        }
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                if resp.status >= 300:
                    text = (await resp.text(errors="replace"))[:200]
                    raise DeliveryError(f"{self.url} answered {resp.status}: {text}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{self.url}: {exc!r}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class EmailChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: Sequence[str],
        starttls: bool = False,
        user: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.sender, self.recipients = sender, list(recipients)
        self._starttls, self._user, self._password = starttls, user, password
        self._timeout_s = timeout_s
        self._tls = tls_context

    async def send(self, transition: str, alert: dict[str, Any]) -> None:
        msg = messages.email_message(
            transition, alert, sender=self.sender, recipients=self.recipients
        )
        await asyncio.to_thread(self._deliver, msg)

    async def send_summary(self, items: Sequence[Item]) -> None:
        msg = messages.summary_email(items, sender=self.sender, recipients=self.recipients)
        await asyncio.to_thread(self._deliver, msg)

    def _deliver(self, msg: EmailMessage) -> None:
        """One SMTP session (in a worker thread: smtplib blocks)."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls(context=self._tls or ssl.create_default_context())
                if self._user:
                    smtp.login(self._user, self._password)
                refused = smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {exc!r}") from exc
        if refused:  # the others have it: sending again would mail them twice
            log.warning("alerts.email_recipients_refused", refused=sorted(refused))

    async def close(self) -> None:
        return None
