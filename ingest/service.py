"""The running pieces of ingest, assembled: writer, MQTT link, router, outbox worker, order-state
sync, device cache. Started and stopped by ``ingest.app`` through aiohttp's cleanup context.

Shutdown order is what makes it lose nothing: stop taking messages (disconnect), let the router
hand everything already received to the writer, stop the outbox worker (rows in flight stay
pending), flush the writer (its futures ack what was committed before the link goes), give the
broker a moment to acknowledge the statuses sent, record those confirmations, close. A status
whose PUBACK never came is published again by the next start (``ingest.mqtt.delivery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Coroutine
from functools import partial
from typing import Any

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.alerting import AlertService
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.connectors.base import Connector, WebhookConnector
from edgeorder.ingest.connectors.factory import make_connector
from edgeorder.ingest.domain.devices import Device
from edgeorder.ingest.errors import StartError
from edgeorder.ingest.health import PlatformMonitor
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.mqtt.delivery import DeliveryTracker
from edgeorder.ingest.mqtt.homeassistant import HaDiscovery
from edgeorder.ingest.mqtt.link import MqttLink, MqttOptions
from edgeorder.ingest.mqtt.router import Router
from edgeorder.ingest.mqtt.statuses import StatusPublisher
from edgeorder.ingest.orders.catalog import SkuCatalog
from edgeorder.ingest.orders.outbox import WORKER, OutboxWorker
from edgeorder.ingest.orders.state_sync import (
    OrderStateSync,
    register_platform_webhooks,
    register_webhook,
)
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store import ledger
from edgeorder.ingest.store.buffer import last_history_id, operator_statuses
from edgeorder.ingest.store.device_cache import DeviceCache
from edgeorder.ingest.store.fanout import Fanout
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.registry import get_device
from edgeorder.ingest.store.writer import Writer, WriterClosedError

__all__ = ["IngestService"]

log = structlog.get_logger(__name__)

SETTLE_TIMEOUT_S = 3.0
"""At shutdown, how long to wait for the PUBACKs of statuses already sent."""
REGISTRY_PERIOD_S = 1.0
"""How often the registry's mark is read (one indexed query): a change made by another
process -- the CLI -- applies to the next press within that."""


def _sweep_s(settings: Settings) -> float:
    """How often an idle worker on a shared ledger looks for rows no wake-up told it of: rows
    another worker recorded and left (it died before ordering), leases that ran out."""
    return min(5.0, settings.outbox_lease_s / 4)


def _outbox_concurrency(settings: Settings) -> int:
    if settings.outbox_concurrency is not None:
        return settings.outbox_concurrency
    return 256 if settings.connector.kind == "ordercore" else 64


class IngestService:
    """Everything long-lived of one ingest process; also the app's ``Publisher``."""

    def __init__(self, settings: Settings, bus: Bus, *, connector: Connector | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.metrics = Metrics(backend="sqlite" if settings.database.url is None else "postgresql")
        self.connector = connector or make_connector(
            settings.connector,
            default_profile=settings.default_profile,
            batch_max=settings.outbox_batch_max,
        )
        self.catalog = SkuCatalog(self.connector, ttl_s=settings.catalog_ttl_s)
        self.webhook_secret = settings.webhook_secret.get_secret_value() or secrets.token_hex(32)
        self.delivery = DeliveryTracker()
        self.database = settings.database
        self.writer = Writer(
            self.database,
            batch_max=settings.commit_batch_max,
            on_commit=self.metrics.on_commit,
            before_commit=self.delivery.write_confirmed,
        )
        self.reader = Reader(self.database)
        self.devices = DeviceCache(
            self.database, read=self.reader, on_config_change=self._config_changed
        )
        self.ha: HaDiscovery | None = None
        if settings.ha_discovery:
            self.ha = HaDiscovery(
                publish=self._publish_raw,
                read=self.reader,
                bus=bus,
                prefix=settings.ha_discovery_prefix,
                dashboard_url=settings.public_url,
            )
        self.link = MqttLink(
            MqttOptions(
                url=settings.mqtt_url,
                username=settings.mqtt_username or None,
                password=settings.mqtt_password.get_secret_value() or None,
                client_id=settings.mqtt_client_id,
                ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
                shared_group=settings.mqtt_shared_group,
                extra_subscriptions=self.ha.subscriptions if self.ha is not None else (),
            )
        )
        if self.ha is not None:
            self.link.on_other = self.ha.on_message
        self.link.on_published = self.delivery.confirmed
        self.statuses = StatusPublisher(self.link, bus, self.delivery)
        self.platform = PlatformMonitor(
            settings.connector.base_url,
            fresh_s=max(120.0, 2 * settings.retry_max_s),
            probe_interval_s=settings.health_probe_interval_s,
        )
        self.worker = OutboxWorker(
            writer=self.writer,
            read=self.reader,
            connector=self.connector,
            devices=self.devices,
            statuses=self.statuses,
            metrics=self.metrics,
            default_profile=settings.default_profile,
            retry_base_s=settings.retry_base_s,
            retry_max_s=settings.retry_max_s,
            concurrency=_outbox_concurrency(settings),
            bus=bus,
            platform=self.platform,
            owner=settings.worker,
            lease_s=settings.outbox_lease_s,
            sweep_s=_sweep_s(settings) if self.database.shared else None,
        )
        self.router = Router(
            writer=self.writer,
            devices=self.devices,
            statuses=self.statuses,
            metrics=self.metrics,
            bus=bus,
            ack=self.link.ack,
            on_outbox=self.worker.wake,
            stale_after_s=settings.stale_event_s,
            future_after_s=settings.future_event_s,
            is_current=self.link.is_current,
            clear_retained=self._clear_retained,
            telemetry_keep_s=settings.telemetry_history_s,
        )
        self.sync = OrderStateSync(
            writer=self.writer,
            read=self.reader,
            connector=self.connector,
            statuses=self.statuses,
            secret=self.webhook_secret,
            poll_interval_s=settings.poll_interval_s,
            metrics=self.metrics,
            tolerance_s=settings.webhook_tolerance_s,
        )
        self.alerts = AlertService(
            settings,
            writer=self.writer,
            reader=self.reader,
            platform=self.platform,
            bus=bus,
            metrics=self.metrics,
            owner=settings.worker,
        )
        self.fanout: Fanout | None = None
        if self.database.url is not None:  # other workers share the ledger: share the notices
            self.fanout = Fanout(self.database.url, bus, origin=settings.worker)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.ready = asyncio.Event()

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, public_url: str | None) -> None:
        """Open the database, start the writer, the tasks and the MQTT link. A step that fails
        raises ``StartError`` naming it, after what the earlier steps opened (threads,
        connections, tasks, the link) has been released: a caller that gets it holds nothing
        to clean up."""
        step = "migrate the database"
        try:
            await asyncio.to_thread(self.database.migrate)  # any worker may: advisory-locked
            step = "load the devices"
            await self.devices.reload()
            step = "start the writer"
            self.writer.start()
            if not self.database.shared:  # one worker per file: its leases are its last run's
                await self.writer.run(ledger.release_leases)
            step = "re-publish unconfirmed statuses"
            self.delivery.start(self._flush_confirmations)
            # Before anything that makes statuses runs: a re-published (older) status must
            # never be queued after a newer one of the same event (the retained one would go
            # backwards).
            await self._republish_unconfirmed()
            step = "start the tasks"
            self._spawn_tasks(public_url)
            step = "start the MQTT link"
            self.link.start()
        except Exception as exc:
            log.exception("ingest.start_failed", step=step)
            await self._release()
            raise StartError(step, exc) from exc
        self.ready.set()
        log.info(
            "ingest.started",
            db=str(self.database),
            worker=self.settings.worker,
            mqtt=self.settings.mqtt_url,
            devices=len(self.devices),
            public_url=public_url,
        )

    def _spawn_tasks(self, public_url: str | None) -> None:
        self._spawn("router", self.router.run(self.link.inbound))
        self._spawn("outbox", self.worker.run())
        self._spawn("poller", self.sync.poll_forever())
        self._spawn("bus", self._follow_bus())
        self._spawn("registry", self.devices.follow(REGISTRY_PERIOD_S, self._registry_changed))
        self._spawn("alerts", self.alerts.run())
        if self.fanout is not None:
            self._spawn("fanout", self.fanout.run())
        if self.ha is not None:
            self._spawn("ha", self.ha.run())
        if public_url and isinstance(self.connector, WebhookConnector):
            url = f"{public_url.rstrip('/')}/webhooks/{self.connector.webhook_name}"
            self._spawn("webhook", register_platform_webhooks(self.connector, url))
        elif public_url and hasattr(self.connector, "register_webhook"):
            url = public_url.rstrip("/") + "/webhooks/ordercore"
            self._spawn("webhook", register_webhook(self.connector, url, self.webhook_secret))

    async def _release(self) -> None:
        """After a failed start: cancel the tasks, close the link, the writer, the connector
        and the reader, whichever were opened (each is a no-op when it was not)."""
        for name in list(self._tasks):
            await self._cancel(name)
        await self.link.stop()
        await self._close()

    async def _close(self) -> None:
        """The last of ``stop`` and of a failed start: what holds threads and connections."""
        self.delivery.cancel_timer()
        await self.writer.stop()
        await self.connector.close()
        await self.alerts.close()
        self.reader.close()

    async def _republish_unconfirmed(self) -> None:
        """The current status of every event whose status publish the broker never confirmed:
        the previous process may have died between a commit and the PUBACK. They wait in
        paho until the link is up, and are tracked like any other publish."""
        outs = await self.reader(ledger.unconfirmed_statuses)
        self.statuses.publish(outs)
        if outs:
            log.info(
                "ingest.republished", statuses=len(outs), rows=sum(len(o.history_ids) for o in outs)
            )

    def _flush_confirmations(self) -> None:
        """The writer is idle but PUBACKs wait to be recorded: one small commit for them."""
        try:
            future = self.writer.submit(self.delivery.write_confirmed)
        except WriterClosedError:  # stopping: stop() writes them itself
            return
        # a failure is logged by the writer and the ids wait for the next commit
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks[name] = asyncio.create_task(coro, name=f"ingest-{name}")

    async def stop(self) -> None:
        log.info("ingest.stopping")
        await self._cancel("router")  # take no new messages
        await self._drain_inbound()
        self.router.close()  # pending re-tries: unacked, so redelivered to the next session
        for name in ("outbox", "poller", "bus", "registry", "webhook", "fanout", "ha", "alerts"):
            await self._cancel(name)  # orders in flight stay pending: safe to retry
        try:
            await self.writer.run(lambda conn: None)  # barrier: every earlier write acked
        except Exception:  # the database is away: what was not written is redelivered
            log.exception("ingest.writer_barrier_failed")
        if self.link.subscribed.is_set():  # connected: PUBACKs can still come
            try:
                async with asyncio.timeout(SETTLE_TIMEOUT_S):
                    await self.delivery.settled()
            except TimeoutError:  # re-published by the next start
                log.warning("ingest.statuses_unconfirmed", publishes=self.delivery.unanswered)
        await self.link.stop()  # the acks and statuses above leave before DISCONNECT
        self.delivery.cancel_timer()
        try:
            await self.writer.run(self.delivery.write_confirmed)
        except Exception:  # not fatal: those statuses are published again next start
            log.exception("ingest.confirmations_not_written")
        await self._close()
        log.info("ingest.stopped")

    def _registry_changed(self) -> None:
        """Another process changed the registry (the CLI): open pages show it."""
        self.bus.publish(Notice("device", None, {"source": "registry", "reloaded": True}))

    async def _cancel(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain_inbound(self) -> None:
        """Write what was received but not yet routed; what arrives later stays unacked and
        the broker redelivers it to the next session."""
        queue = self.link.inbound
        while not queue.empty():
            self.router.handle(queue.get_nowait())

    async def _follow_bus(self) -> None:
        """Registry changes reload the device cache; operators' buffer actions wake the worker
        and their statuses (a discard fails the event) go to the device -- sent by the worker
        the operator used, not by every worker that hears of it; another worker's alert
        changes refresh this one's banner."""
        seen = await self.reader(last_history_id)
        async with self.bus.subscribe(frozenset({"device", "outbox", "alert"})) as notices:
            while True:
                notice = await notices.get()
                if notice.kind == "resync" or (notice.kind == "alert" and notice.origin):
                    # another worker opened, cleared or acknowledged one: this worker's banner
                    await self.alerts.refresh(announce=False)
                    self.bus.publish(Notice("alert_view"))  # local only: pages re-read
                if notice.kind == "resync" or (
                    notice.kind == "device"
                    and notice.data.get("source") != "publisher"
                    and not (notice.origin is None and notice.data.get("reloaded"))
                ):
                    await self.devices.reload()
                if notice.kind == "resync" or (
                    notice.kind == "outbox" and notice.data.get("source") != WORKER
                ):
                    self.worker.wake()
                    if notice.origin is None:
                        seen, outs = await self.reader(partial(operator_statuses, after_id=seen))
                        self.statuses.publish(outs)

    # --- Publisher ----------------------------------------------------------------------------

    async def reload_devices(self) -> None:
        await self.devices.reload()

    async def publish_config(self, device_id: str) -> None:
        """Publish the device's desired config, retained, from the registry."""

        row = await self.reader(partial(get_device, device_id=device_id))
        self._send_config(
            device_id,
            p.DeviceConfig(
                version=row["config_version"],
                mapping=p.ButtonMapping.model_validate(row["mapping"]),
                env=row["env"],
            ),
        )

    def _config_changed(self, device: Device) -> None:
        """A device is new to the cache or has a new config version: (re)publish its config.
        At start-up that is every device; the messages wait in paho until the link is up."""
        self._send_config(
            device.device_id,
            p.DeviceConfig(version=device.config_version, mapping=device.mapping, env=device.env),
        )

    def _clear_retained(self, topic: str) -> None:
        """Delete the retained message of ``topic`` on the broker (an empty retained publish)."""
        self.link.publish(topic, b"", qos=1, retain=True)

    def _publish_raw(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        self.link.publish(topic, payload, qos=qos, retain=retain)

    def _send_config(self, device_id: str, config: p.DeviceConfig) -> None:
        self.link.publish(
            p.device_topic(device_id, p.Channel.CONFIG), p.encode(config), qos=1, retain=True
        )
        self.bus.publish(
            Notice("device", device_id, {"config_version": config.version, "source": "publisher"})
        )
