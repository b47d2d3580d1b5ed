"""Order-platform connectors: the built-in order core, Nuvemshop/Tiendanube, e-vendi, OneEntry."""

from edgeorder.ingest.connectors.base import (
    Connector,
    OrderRequest,
    OrderResult,
    PermanentError,
    PlatformError,
    TransientError,
)

__all__ = [
    "Connector",
    "OrderRequest",
    "OrderResult",
    "PermanentError",
    "PlatformError",
    "TransientError",
]
