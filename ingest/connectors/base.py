"""What every order-platform connector offers ingest, and how it reports failure.

A connector turns one device action into the platform's own dialect over HTTP, passing the
event's ULID as the platform's idempotency key (or its nearest equivalent), and maps the
platform's order states onto ``protocol.State``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from edgeorder.protocol import State

__all__ = [
    "AssignedOrdersConnector",
    "BatchConnector",
    "CatalogConnector",
    "CatalogItem",
    "Connector",
    "OrderRequest",
    "OrderResult",
    "PermanentError",
    "PlatformError",
    "RejectedError",
    "TransientError",
    "WebhookConnector",
    "WebhookRejectedError",
]


@dataclass(frozen=True)
class OrderRequest:
    """One order to create. ``idempotency_key`` is the device's ``event_id``."""

    idempotency_key: str
    device_id: str
    sku: str
    quantity: int
    test: bool = False
    profile: dict[str, Any] = field(default_factory=dict)
    """Buyer data in BlackBox shape: ``Customer``, ``Shipping``, ``PaymentMethod``."""
    may_exist: bool = True
    """An earlier attempt under this key may have reached the platform (a lost reply, a crash
    mid-call). A platform without an idempotency key must then look for that order before
    creating one; False only when the caller knows this is the first call for the key."""
    order_id: str | None = None
    """For an ``AssignedOrdersConnector``: the existing platform order this press finalizes."""
    recorded_at: datetime | None = None
    """When ingest recorded the press (ingest's clock): no order for it is older. A lookup
    bounds its search with it rather than with the ULID's time alone (the device's clock)."""


@dataclass(frozen=True)
class OrderResult:
    """The platform's view of one order after a call."""

    order_id: str
    state: State
    platform_status: int | str | None = None
    amount: int | None = None
    currency: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    settled: bool = False
    """The platform will say nothing more about this order (no reads, no webhooks) and the
    call finished it: ingest neither polls it nor counts it as in flight for the throttle."""


class PlatformError(Exception):
    """A call to the platform did not succeed; ``reason`` is safe to show a device owner."""

    retryable = False

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class TransientError(PlatformError):
    """Down, 5xx, 429 or timeout: keep the work and retry with backoff (``queued``)."""

    retryable = True


class PermanentError(PlatformError):
    """4xx: the platform refused the order; retrying cannot help (``failed``)."""


class RejectedError(PermanentError):
    """Not allowed before any platform call (e.g. no order is assigned to the device): the
    event becomes ``rejected`` with ``reason``, not ``failed``."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.code = code


class Connector(Protocol):
    """One order platform. Implementations live beside this module, one per platform."""

    name: str

    async def create_order(self, request: OrderRequest) -> OrderResult:
        """Create the order, idempotently under ``request.idempotency_key``."""

    async def cancel_order(self, order_id: str, *, idempotency_key: str) -> OrderResult:
        """Cancel ``order_id`` on the buyer's behalf."""

    async def get_order(self, order_id: str) -> OrderResult:
        """The order's current state (the polling fallback for missed webhooks)."""

    async def close(self) -> None:
        """Release HTTP sessions."""


@dataclass(frozen=True)
class CatalogItem:
    """One SKU the platform can order; ``label`` is what an operator picks it by."""

    sku: str
    label: str = ""


@runtime_checkable
class CatalogConnector(Protocol):
    """A platform whose SKUs can be listed (``ingest.orders.catalog`` caches them): a mapping
    to any other SKU is refused, since its first press would fail. A connector without this
    has no catalog: any SKU is taken, with a warning."""

    catalog_source: str
    """Where the list comes from, for people (``GET /api/sku``, ``options.variants``)."""

    async def catalog(self) -> list[CatalogItem]:
        """Every SKU the platform can order; ``TransientError`` while it is unreachable."""


@runtime_checkable
class BatchConnector(Protocol):
    """A connector whose platform takes many orders in one request (the built-in order core's
    ``POST /api/checkouts``). The outbox worker hands it up to ``batch_max`` due rows at once;
    each request keeps its own idempotency key and gets its own answer."""

    batch_max: int

    async def create_orders(
        self, requests: list[OrderRequest]
    ) -> list[OrderResult | PlatformError]:
        """One answer per request, in order: the order, or why it was not made (a
        ``TransientError`` to retry, a ``PermanentError`` to fail). Raises ``TransientError``
        when the call as a whole did not get through (every request is retried)."""


@runtime_checkable
class AssignedOrdersConnector(Protocol):
    """A platform that cannot open orders, only finalize ones that already exist (e-vendi's
    ``closeOrder``). The outbox worker claims the device's next order assigned by the
    operator (``ingest.store.evendi_assignments``) and passes it as ``OrderRequest.order_id``."""

    finalizes_assigned_orders: bool


class WebhookRejectedError(Exception):
    """A webhook delivery that must not be trusted or cannot be used; ``code`` labels the
    rejection counter and ``status`` is the HTTP answer (401 forged, 400 malformed)."""

    def __init__(self, code: str, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


@runtime_checkable
class WebhookConnector(Protocol):
    """A platform that notifies ingest of order changes at ``/webhooks/{webhook_name}``;
    ``ingest.orders.state_sync`` verifies, reads the order's state and applies it forward."""

    webhook_name: str

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``WebhookRejectedError`` unless the platform signed ``body``."""

    def webhook_order_ids(self, body: bytes) -> list[str]:
        """The orders a verified delivery is about (their state is then read with
        ``get_order``); ``WebhookRejectedError`` for a body that is no webhook."""

    async def register_webhooks(self, url: str) -> None:
        """Make the platform deliver order events to ``url`` (idempotent)."""
