"""Build the configured order-platform connector from ``ConnectorSettings``."""

from __future__ import annotations

from edgeorder.ingest.connectors.base import Connector
from edgeorder.ingest.settings import ConnectorSettings

__all__ = ["make_connector"]


def make_connector(settings: ConnectorSettings) -> Connector:
    """The connector for ``settings.kind``; bad ``options`` raise ``ConnectorOptionsError``.

    Imports are local so a process only loads the platform it talks to.
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
        from edgeorder.ingest.connectors.ordercore import OrderCoreConnector

        # The ingest engineer's class takes plain values, not the settings model.
        return OrderCoreConnector(
            settings.base_url, settings.token.get_secret_value(), timeout_s=settings.timeout_s
        )
    raise ValueError(f"unknown connector kind {settings.kind!r}")
