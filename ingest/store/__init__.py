"""ingest's SQLite store: one file, WAL, numbered migrations (see ``migrations``)."""

from edgeorder.ingest.store.db import SCHEMA_VERSION, open_db

__all__ = ["SCHEMA_VERSION", "open_db"]
