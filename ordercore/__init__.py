"""The built-in order core: BlackBox Order API dialect with the Nuvemshop lifecycle.

An aiohttp service over one SQLite file: catalog, checkout (one order per merchant, exactly once
per Idempotency-Key), order queries, lifecycle actions with history, signed webhooks.
"""

from edgeorder.kit.signing import sign, verify
from edgeorder.ordercore.app import create_app
from edgeorder.ordercore.core import CORE, Core
from edgeorder.ordercore.lifecycle import Action, OrderStatus
from edgeorder.ordercore.settings import SEED_CATALOG, Settings

__all__ = [
    "CORE",
    "SEED_CATALOG",
    "Action",
    "Core",
    "OrderStatus",
    "Settings",
    "create_app",
    "sign",
    "verify",
]
