"""Statuses back to devices: retained QoS 1 on ``edgeorder/v1/devices/{id}/status``, plus a
bus notice for the live dashboard. The rows were already written in ``status_history`` by the
transaction that produced them (``ingest.store.ledger``); each publish is handed to the
``DeliveryTracker``, which marks those rows confirmed once the broker acknowledged it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from edgeorder import protocol as p
from edgeorder.ingest.bus import Bus, Notice
from edgeorder.ingest.mqtt.delivery import DeliveryTracker
from edgeorder.ingest.store.ledger import StatusOut

__all__ = ["StatusPublisher", "Transport"]


class Transport(Protocol):
    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int | None: ...


class StatusPublisher:
    """Publishes ``StatusOut`` values after their commit."""

    def __init__(
        self, transport: Transport, bus: Bus, delivery: DeliveryTracker | None = None
    ) -> None:
        self._transport = transport
        self._bus = bus
        self._delivery = delivery

    def publish(self, outs: Iterable[StatusOut]) -> None:
        for out in outs:
            topic = p.device_topic(out.device_id, p.Channel.STATUS)
            mid = self._transport.publish(topic, p.encode(out.status), qos=1, retain=True)
            if self._delivery is not None and mid is not None:
                self._delivery.sent(mid, out.history_ids)
            if not self._bus.wants("status") and not self._bus.wants("order"):
                continue  # nobody watches: don't build notices on the hot path
            data = out.status.model_dump(mode="json")
            self._bus.publish(Notice("status", out.device_id, data))
            if out.status.order_id is not None:  # an order was created or changed state
                self._bus.publish(Notice("order", out.device_id, data))
