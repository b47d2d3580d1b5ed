"""Typed keys of what the ingest ``web.Application`` holds (STYLE.md #6)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from edgeorder.ingest.alerting import AlertService
from edgeorder.ingest.bus import Bus
from edgeorder.ingest.metrics import Metrics
from edgeorder.ingest.orders.catalog import SkuCatalog
from edgeorder.ingest.settings import Settings
from edgeorder.ingest.simulator import Simulator
from edgeorder.ingest.store.handle import Store

__all__ = [
    "ALERTS_KEY",
    "BUS_KEY",
    "CATALOG_KEY",
    "METRICS_KEY",
    "PUBLISHER_KEY",
    "SETTINGS_KEY",
    "SIMULATOR_KEY",
    "STORE_KEY",
    "Publisher",
]


class Publisher(Protocol):
    """Sends to devices through the broker (implemented by ingest's MQTT link)."""

    async def publish_config(self, device_id: str) -> None:
        """Publish the device's desired config (retained) from the registry."""

    async def reload_devices(self) -> None:
        """Re-read the registry into the event path's device cache (after a change)."""


SETTINGS_KEY = web.AppKey("settings", Settings)
BUS_KEY = web.AppKey("bus", Bus)
SIMULATOR_KEY = web.AppKey("simulator", Simulator)  # present only when a simulator was given
PUBLISHER_KEY = web.AppKey("publisher", Publisher)
STORE_KEY = web.AppKey("store", Store)
"""The service's one writer and one reader pool, for the HTTP side (``ingest.store.handle``)."""
METRICS_KEY = web.AppKey("metrics", Metrics)
"""The service's Prometheus metrics, for handlers that count what they answer."""
CATALOG_KEY = web.AppKey("catalog", SkuCatalog)
"""The order platform's SKUs (cached) and the check of every mapping change."""
ALERTS_KEY = web.AppKey("alerts", AlertService)
"""The service's alert evaluator: open alerts for the banner, acknowledgements."""
