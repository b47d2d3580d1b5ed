"""Build the configured order-platform connector from ``ConnectorSettings``: the one factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeorder.ingest.connectors.base import Connector
from edgeorder.ingest.connectors.settings import ConnectorSettings

__all__ = ["make_connector"]


def make_connector(
    settings: ConnectorSettings,
    *,
    default_profile: Mapping[str, Any] | None = None,
    batch_max: int = 32,
) -> Connector:
    """The connector for ``settings.kind``; bad ``options`` raise ``ConnectorOptionsError``.

    ``default_profile`` (buyer data laid over the built-in one) and ``batch_max`` (orders per
    request) concern the built-in order core only; the other platforms take theirs from
    ``settings.options``. Imports are local so a process only loads the platform it talks to.
    """
    if settings.kind == "nuvemshop":
        from edgeorder.ingest.connectors.nuvemshop import NuvemshopConnector

        return NuvemshopConnector(settings)
    if settings.kind == "evendi":
        from edgeorder.ingest.connectors.evendi import EvendiConnector

        return EvendiConnector(settings)
    if settings.kind == "oneentry":
        from edgeorder.ingest.connectors.oneentry import OneEntryConnector

        return OneEntryConnector(settings)
    if settings.kind == "ordercore":
        from edgeorder.ingest.connectors.ordercore import DEFAULT_PROFILE, OrderCoreConnector

        return OrderCoreConnector(
            settings.base_url,
            settings.token.get_secret_value(),
            timeout_s=settings.timeout_s,
            default_profile={**DEFAULT_PROFILE, **(default_profile or {})},
            batch_max=batch_max,
        )
    raise ValueError(f"unknown connector kind {settings.kind!r}")
