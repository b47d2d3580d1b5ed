"""ingest's store: every SQL statement of ingest, on SQLite (one file, WAL) or PostgreSQL.

``database`` (where it lives, and the backend's hooks), ``pg`` (the PostgreSQL adapter),
``db`` (SQLite), ``migrations`` (one numbered schema for both), ``writer`` / ``reader`` (the
kit's group-commit writer and reader pool on it), and the SQL by subject: ``ledger`` (inbox,
order outbox, orders, status history), ``registry``, ``reports``, ``buffer``,
``evendi_assignments``, ``device_cache``, ``fanout`` (notices between workers).
"""

from edgeorder.ingest.store.database import SCHEMA_VERSION, Database
from edgeorder.ingest.store.db import open_db

__all__ = ["SCHEMA_VERSION", "Database", "open_db"]
