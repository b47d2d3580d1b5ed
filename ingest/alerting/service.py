"""The alert evaluator of one ingest process: every ``alert_interval_s`` it gathers the facts
(the store through the reader pool, the order platform through the ``PlatformMonitor``), asks
the pure rules (``domain.alerts``) which alerts should be open, applies that through the one
writer (``store.alerts.apply``), and sends the notifications that are due (``Notifier``).

It also keeps the open alerts in memory (``open``) for the dashboard's banner, refreshed after
every pass and every acknowledgement, and the ``edgeorder_alerts_active{kind}`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.alerting.channels import Channel, EmailChannel, WebhookChannel
from edgeorder.ingest.alerting.notifier import Notifier
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.domain import alerts as rules
from edgeorder.ingest.health import PlatformMonitor
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import alerts as store
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer

__all__ = ["AlertService", "channels_of", "limits_of"]

log = structlog.get_logger(__name__)


def limits_of(settings: Settings) -> rules.Limits:
    return rules.Limits(
        offline_s=settings.alert_offline_s,
        buffer_age_s=settings.alert_buffer_age_s,
        failure_window_s=settings.alert_failure_window_s,
        failure_count=settings.alert_failure_count,
        failure_ratio=settings.alert_failure_ratio,
        queue_depth=settings.alert_queue_depth,
        dropped=settings.alert_dropped,
        config_grace_s=settings.alert_config_grace_s,
    )


def channels_of(settings: Settings) -> list[Channel]:
    """The notification channels the settings configure (none: alerts show on the dashboard
    and the API only)."""
    channels: list[Channel] = []
    if settings.alert_webhook_url:
        channels.append(
            WebhookChannel(
                settings.alert_webhook_url,
                settings.alert_webhook_secret.get_secret_value(),
                timeout_s=settings.alert_notify_timeout_s,
            )
        )
    if settings.alert_smtp_host:
        channels.append(
            EmailChannel(
                settings.alert_smtp_host,
                settings.alert_smtp_port,
                sender=settings.alert_smtp_from,
                recipients=settings.alert_smtp_recipients,
                starttls=settings.alert_smtp_starttls,
                user=settings.alert_smtp_user,
                password=settings.alert_smtp_password.get_secret_value(),
                timeout_s=settings.alert_notify_timeout_s,
            )
        )
    return channels


class AlertService:
    def __init__(
        self,
        settings: Settings,
        *,
        writer: Writer,
        reader: Reader,
        platform: PlatformMonitor,
        bus: Bus,
        metrics: Metrics,
        owner: str,
        channels: list[Channel] | None = None,
        clock: Callable[[], datetime] = p.utcnow,
    ) -> None:
        self._writer, self._reader, self._platform = writer, reader, platform
        self._bus, self._metrics, self._clock = bus, metrics, clock
        self.interval_s = settings.alert_interval_s
        self.limits = limits_of(settings)
        self.hold_s = settings.alert_clear_hold_s
        chosen = channels_of(settings) if channels is None else channels
        self.channel_names = tuple(c.name for c in chosen)
        self.notifier = Notifier(
            chosen,
            writer=writer,
            reader=reader,
            metrics=metrics,
            owner=owner,
            attempts=settings.alert_notify_attempts,
            retry_s=settings.alert_notify_retry_s,
            max_per_period=settings.alert_notify_max,
            period_s=settings.alert_notify_period_s,
            lease_s=max(60.0, 3 * settings.alert_notify_timeout_s),
        )
        self.open: list[dict[str, Any]] = []
        """The alerts not cleared, oldest first, as of the last pass (the banner's)."""
        self._down_since: datetime | None = None
        self._wake = asyncio.Event()
        self.passes = 0
        self.passed = asyncio.Event()
        """Set after every pass (tests wait on it; cleared by whoever waits)."""

    def wake(self) -> None:
        """Run a pass now (an acknowledgement queued notifications)."""
        self._wake.set()

    async def run(self) -> None:
        """Evaluate and notify every interval until cancelled; a failing pass is logged and
        the next one tries again."""
        while True:
            self._wake.clear()
            try:
                await self.evaluate()
            except Exception:
                log.exception("alerts.evaluate_failed")
            try:
                await self.notifier.run_once(self._clock())
            except Exception:
                log.exception("alerts.notify_pass_failed")
            self.passes += 1
            self.passed.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()

    async def evaluate(self) -> list[store.Transition]:
        """One evaluation: facts in, alerts opened/cleared; the transitions made."""
        now = self._clock()
        platform = await self._platform.state()
        if platform.reachable:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        gathered = await self._reader(
            partial(store.gather_facts, now=now, window_s=self.limits.failure_window_s)
        )
        facts = rules.Facts(
            now=now,
            platform_reachable=platform.reachable,
            platform_detail=platform.detail,
            platform_down_since=self._down_since,
            **gathered,
        )
        desired = rules.evaluate(facts, self.limits)
        made = await self._writer.run(
            partial(
                store.apply, desired=desired, now=now, hold_s=self.hold_s,
                channels=self.channel_names,
            )
        )  # fmt: skip
        for t in made:
            log.warning(
                "alerts." + t.transition, alert_id=t.alert_id, kind=t.kind, device_id=t.device_id
            )
        await self.refresh(announce=bool(made))
        return made

    async def acknowledge(self, alert_id: int, actor: str) -> dict[str, Any]:
        """Acknowledge an active alert (audited); raises ``store.AlertNotFoundError`` /
        ``store.AlertNotActiveError``. The acknowledgement's notifications go out at once."""
        await self._writer.run(
            partial(
                store.acknowledge, alert_id=alert_id, actor=actor, now=self._clock(),
                channels=self.channel_names,
            )
        )  # fmt: skip
        log.info("alerts.acknowledged", alert_id=alert_id, actor=actor)
        await self.refresh(announce=True)
        self.wake()
        alert = await self._reader(partial(store.get_alert, alert_id=alert_id))
        assert alert is not None
        return alert

    async def refresh(self, *, announce: bool) -> None:
        """Re-read the open alerts (banner, gauge); ``announce``: tell open pages."""
        self.open = await self._reader(store.open_alerts)
        counts: dict[str, int] = {}
        for alert in self.open:
            counts[alert["kind"]] = counts.get(alert["kind"], 0) + 1
        for kind in rules.AlertKind:
            self._metrics.alerts_active.labels(kind.value).set(counts.get(kind.value, 0))
        if announce:
            self._bus.publish(Notice("alert", None, {"open": len(self.open)}))

    async def close(self) -> None:
        await self.notifier.close()
