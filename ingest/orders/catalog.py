"""The order platform's SKUs, cached for a short while, and the check every mapping change
passes (``device add`` on the CLI, the dashboard, the REST API): a SKU the platform does not
sell is refused with its name and the platform's, since the device's first press would fail.

``check_mapping`` is the pure rule; ``SkuCatalog`` is the I/O around it (one read of the
platform at a time, kept ``ttl_s``; a failed read only ``FAILURE_TTL_S``, so the next change
soon asks again while pages that show the picker do not wait on a dead platform each time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import structlog

from edgeorder import protocol as p
from edgeorder.ingest.connectors.base import (
    CatalogConnector,
    CatalogItem,
    Connector,
    PlatformError,
)

__all__ = [
    "DEFAULT_TTL_S",
    "CatalogUnavailableError",
    "CatalogView",
    "SkuCatalog",
    "SkuError",
    "UnknownSkuError",
    "check_mapping",
    "mapping_skus",
]

log = structlog.get_logger(__name__)

DEFAULT_TTL_S = 60.0
"""How long a read of the platform's catalog is used (``catalog_ttl_s``)."""
FAILURE_TTL_S = 5.0
"""How long a failed read is the answer (never longer than ``ttl_s``)."""


class SkuError(ValueError):
    """A mapping is refused because of its SKUs; the message says which and why."""

    def hinted(self, hint: str) -> SkuError:
        """The same error, its message followed by how to override it where it is shown."""
        self.args = (f"{self}; {hint}",)
        return self


class UnknownSkuError(SkuError):
    def __init__(self, skus: list[str], platform: str) -> None:
        names = ", ".join(repr(s) for s in skus)
        word = "SKU" if len(skus) == 1 else "SKUs"
        super().__init__(f"{word} {names} not in the catalog of {platform}")
        self.skus, self.platform = skus, platform


class CatalogUnavailableError(SkuError):
    def __init__(self, skus: list[str], platform: str, reason: str) -> None:
        names = ", ".join(repr(s) for s in skus)
        word = "SKU" if len(skus) == 1 else "SKUs"
        super().__init__(
            f"cannot check {word} {names}: the catalog of {platform} is unreachable ({reason})"
        )
        self.skus, self.platform, self.reason = skus, platform, reason


@dataclass(frozen=True)
class CatalogView:
    """The platform's SKUs as last read: ``items`` None when the platform has no catalog
    (``error`` None) or could not be read (``error`` says why)."""

    platform: str
    items: tuple[CatalogItem, ...] | None
    error: str | None = None
    source: str = ""

    @property
    def has_catalog(self) -> bool:
        return self.items is not None or self.error is not None

    @cached_property
    def skus(self) -> frozenset[str]:
        """Made once per read of the catalog, not once per check."""
        return frozenset(i.sku for i in self.items or ())


def mapping_skus(mapping: p.ButtonMapping) -> list[str]:
    """Every SKU a mapping reorders (clicks, then sensors), each once."""
    actions = [mapping.single, mapping.double, mapping.long, *mapping.sensors.values()]
    skus = [a.sku for a in actions if isinstance(a, p.ReorderAction)]
    return list(dict.fromkeys(skus))


def check_mapping(mapping: p.ButtonMapping, view: CatalogView, *, allow_unknown: bool) -> list[str]:
    """Warnings for a mapping that may be saved; ``SkuError`` for one that may not.

    Unknown SKUs (and SKUs that cannot be checked, the platform being unreachable) are
    refused unless ``allow_unknown``; a platform without a catalog takes any SKU."""
    skus = mapping_skus(mapping)
    if not skus:
        return []
    if not view.has_catalog:
        return [f"{view.platform} has no catalog: SKU {', '.join(skus)} not checked"]
    if view.items is None:
        if not allow_unknown:
            raise CatalogUnavailableError(skus, view.platform, view.error or "no answer")
        return [f"SKU {', '.join(skus)} not checked: {view.platform} unreachable"]
    unknown = [s for s in skus if s not in view.skus]
    if unknown and not allow_unknown:
        raise UnknownSkuError(unknown, view.platform)
    return [f"SKU {s!r} is not in the catalog of {view.platform} (allowed)" for s in unknown]


class SkuCatalog:
    """The connector's catalog, read at most once per ``ttl_s`` (and once at a time)."""

    def __init__(
        self,
        connector: Connector,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector, self._ttl_s, self._clock = connector, ttl_s, clock
        self._view: CatalogView | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def platform(self) -> str:
        return str(getattr(self._connector, "name", "the order platform"))

    async def view(self) -> CatalogView:
        """The catalog, from the cache while it is fresh."""
        connector = self._connector
        if not isinstance(connector, CatalogConnector):
            return CatalogView(self.platform, None)
        async with self._lock:
            if self._view is not None and self._clock() - self._read_at < self._keep(self._view):
                return self._view
            source = connector.catalog_source
            try:
                items = await connector.catalog()
            except PlatformError as exc:
                log.warning("catalog.unavailable", platform=self.platform, reason=exc.reason)
                self._view = CatalogView(self.platform, None, exc.reason, source)
            else:
                log.info("catalog.read", platform=self.platform, skus=len(items))
                self._view = CatalogView(self.platform, tuple(items), None, source)
            self._read_at = self._clock()
            return self._view

    def forget(self) -> None:
        """Drop the cached read: the next view reads the platform again."""
        self._view = None

    def _keep(self, view: CatalogView) -> float:
        return self._ttl_s if view.items is not None else min(self._ttl_s, FAILURE_TTL_S)

    async def check(self, mapping: p.ButtonMapping, *, allow_unknown: bool = False) -> list[str]:
        """``check_mapping`` against the current catalog (read only when the mapping has
        SKUs); the warnings are logged."""
        if not mapping_skus(mapping):
            return []
        warnings = check_mapping(mapping, await self.view(), allow_unknown=allow_unknown)
        for warning in warnings:
            log.warning("catalog.sku_not_checked", platform=self.platform, detail=warning)
        return warnings
