"""What every order-platform connector offers ingest, and how it reports failure.

A connector turns one device action into the platform's own dialect over HTTP, passing the
event's ULID as the platform's idempotency key (or its nearest equivalent), and maps the
platform's order states onto ``protocol.State``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from edgeorder.protocol import State

__all__ = [
    "BatchConnector",
    "Connector",
    "OrderRequest",
    "OrderResult",
    "PermanentError",
    "PlatformError",
    "TransientError",
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


@dataclass(frozen=True)
class OrderResult:
    """The platform's view of one order after a call."""

    order_id: str
    state: State
    platform_status: int | str | None = None
    amount: int | None = None
    currency: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


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
