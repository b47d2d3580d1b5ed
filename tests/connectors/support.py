"""What the connector tests of every platform build the same way: order requests, and the
connectors a test makes (closed when it ends)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ulid import ULID

from edgeorder.ingest.connectors.base import Connector, OrderRequest
from edgeorder.ingest.connectors.settings import ConnectorSettings

C = TypeVar("C", bound=Connector)


def order_request(
    sku: str, profile: dict[str, Any], *, test: bool = False, may_exist: bool = False
) -> OrderRequest:
    """A new press's order: 2 of ``sku`` for ``dev-1``, a fresh idempotency key."""
    return OrderRequest(
        idempotency_key=str(ULID()),
        device_id="dev-1",
        sku=sku,
        quantity=2,
        test=test,
        profile=profile,
        may_exist=may_exist,
    )


def retry_of(req: OrderRequest) -> OrderRequest:
    """The same request again, as the outbox sends it after an attempt with no answer."""
    return OrderRequest(**{**req.__dict__, "may_exist": True})


@asynccontextmanager
async def making(
    cls: Callable[[ConnectorSettings], C],
    kind: str,
    *,
    base_url: str,
    token: str,
    options: dict[str, Any],
) -> AsyncIterator[Callable[..., C]]:
    """``build(**over)`` makes a ``cls`` connector from these settings, any of them (and
    ``options`` keys) overridden; every one made is closed on exit."""
    made: list[C] = []

    def build(**over: Any) -> C:
        settings = ConnectorSettings(
            kind=kind,
            base_url=over.pop("base_url", base_url),
            token=over.pop("token", token),
            timeout_s=over.pop("timeout_s", 2.0),
            options={**options, **over.pop("options", {})},
            **over,
        )
        made.append(cls(settings))
        return made[-1]

    try:
        yield build
    finally:
        for conn in made:
            await conn.close()
