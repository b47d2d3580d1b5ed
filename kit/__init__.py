"""The shared kit: mechanics every part needs once, in the standard library only.

- ``kit.tx``: the one transaction helper (``transaction``), nesting through savepoints;
- ``kit.writer``: the group-commit ``Writer`` (one thread, one transaction per batch of jobs);
- ``kit.reader``: the ``Reader`` pool (queries on a few threads, never on the event loop);
- ``kit.migrate``: the numbered-migration runner;
- ``kit.backoff``: capped exponential backoff with full jitter (every retry delay);
- ``kit.signing``: HMAC-SHA256 webhook signing and verifying, constant-time.

They are generic over a DB-API-like connection (``kit.tx.Connection``: ``execute`` and
``in_transaction``), so the same code runs on ``sqlite3`` and on the PostgreSQL adapter of
ingest's store. What depends on a backend (how to connect, pragmas, which errors are transient,
how to lock) stays in each service's store and is handed in as a function.

Every part may import ``edgeorder.kit``; the kit imports nothing of the project and nothing but
the standard library (import-linter contracts in pyproject.toml).
"""

from edgeorder.kit.migrate import SchemaTooNewError, migrate
from edgeorder.kit.reader import Reader, ReaderClosedError
from edgeorder.kit.tx import Connection, rollback, transaction
from edgeorder.kit.writer import Writer, WriterClosedError

__all__ = [
    "Connection",
    "Reader",
    "ReaderClosedError",
    "SchemaTooNewError",
    "Writer",
    "WriterClosedError",
    "migrate",
    "rollback",
    "transaction",
]
