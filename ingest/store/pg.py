"""PostgreSQL for ingest's store: a thin adapter, so the ledger's one copy runs on both backends.

The store's SQL is written once, in the dialect both databases share (``INSERT ... ON CONFLICT``,
``RETURNING``, ``IS NOT DISTINCT FROM``, ISO-8601 text timestamps). ``PgConnection`` wraps a
psycopg 3 connection in autocommit mode (transactions are explicit, as on SQLite with
``isolation_level=None``) and bridges what differs:

- placeholders: ``?`` and ``:name`` become ``%s`` and ``%(name)s`` (a literal ``%`` is escaped);
  the translation of each statement is cached;
- ``BEGIN IMMEDIATE`` (SQLite's "take the write lock now") is ``BEGIN``: PostgreSQL locks rows,
  and the writer takes its per-device locks explicitly (``lock_keys``);
- booleans bound to INTEGER columns are sent as 0/1, as ``sqlite3`` stores them;
- ``in_transaction`` from libpq's transaction status (also true in a failed transaction,
  which must be rolled back).

Also here: which errors are transient (``is_transient``: SQLSTATE classes, not messages), the
schema's rendering for PostgreSQL (``render``), the schema-version table and the advisory lock
that lets every worker migrate safely at start (``migrate``), and the readers' pool.

psycopg is imported lazily: it is the ``[postgres]`` extra, and a SQLite-only install never
loads it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from edgeorder.kit import migrate as kit_migrate

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = [
    "MissingDriverError",
    "PgConnection",
    "PgReaders",
    "connect",
    "is_transient",
    "lock_keys",
    "migrate",
    "redact",
    "translate",
]

APPLICATION_NAME = "edgeorder-ingest"
MIGRATION_LOCK = 0x6564_6765_6F72_6431  # "edgeord1": one advisory lock id for the schema
"""``pg_advisory_xact_lock`` key held while a worker reads and applies the migrations."""

# Per session: a stuck transaction (a worker frozen mid-batch) must not hold its locks for
# ever; lock waits end with an error the caller retries, instead of piling up.
_SESSION_OPTIONS = (
    "-c idle_in_transaction_session_timeout=60000 -c lock_timeout=30000 -c statement_timeout=120000"
)
_READONLY_OPTIONS = _SESSION_OPTIONS + " -c default_transaction_read_only=on"

# SQLSTATE classes of failures that depend on the server, not on the data: a lost or refused
# connection (08), a serialization failure or deadlock (40), out of disk/memory/connections
# (53), an administrator's shutdown or a server starting (57), an I/O error (58).
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_STATES = frozenset(
    {
        "55P03",  # lock_not_available (lock_timeout)
        "55006",  # object_in_use
        "25006",  # read_only_sql_transaction: a replica promoted, or not yet
        "XX001",  # data_corrupted (as SQLITE_CORRUPT: wait for the operator, lose nothing)
        "XX002",  # index_corrupted
    }
)


class MissingDriverError(RuntimeError):
    """A postgresql:// URL on an install without the ``[postgres]`` extra."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise MissingDriverError(
            "PostgreSQL needs the psycopg driver: pip install 'edgeorder[postgres]'"
        ) from exc
    return psycopg


def redact(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


# --- SQL translation ---------------------------------------------------------------------------

_TOKENS = re.compile(r"--[^\n]*|'(?:[^']|'')*'|\?|:[A-Za-z_]\w*|%")


def _token(match: re.Match[str]) -> str:
    token = match.group(0)
    if token == "?":
        return "%s"
    if token == "%":
        return "%%"
    if token.startswith(":"):
        return f"%({token[1:]})s"
    return token  # a comment or a string literal, unchanged


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` as written for SQLite, as psycopg takes it (see the module docstring)."""
    if sql.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    return _TOKENS.sub(_token, sql)


def _params(parameters: Any) -> Any:
    if isinstance(parameters, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in parameters.items()}
    return [int(v) if isinstance(v, bool) else v for v in parameters]


class PgConnection:
    """A psycopg connection with the ``sqlite3.Connection`` surface the store uses."""

    dialect = "postgres"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return bool(self.raw.info.transaction_status != 0)  # 0: IDLE

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /) -> Any:
        return self.raw.execute(translate(sql), _params(parameters))

    def close(self) -> None:
        self.raw.close()

    @property
    def alive(self) -> bool:
        """False once the connection was lost (the server restarted, the network broke)."""
        return not (self.raw.closed or self.raw.broken)


def connect(url: str, *, readonly: bool = False) -> PgConnection:
    """A new session on ``url``, autocommit, with the session limits above."""
    psycopg = _psycopg()
    raw = psycopg.connect(
        url,
        autocommit=True,
        application_name=APPLICATION_NAME,
        connect_timeout=10,
        options=_READONLY_OPTIONS if readonly else _SESSION_OPTIONS,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    return PgConnection(raw)


def alive(conn: PgConnection) -> bool:
    return conn.alive


def is_transient(exc: BaseException) -> bool:
    """Can a write that failed with ``exc`` (a psycopg error) pass if tried again later?"""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is None:  # no answer from the server: the connection is gone or refused
        psycopg = _psycopg()
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_STATES


# --- locks -------------------------------------------------------------------------------------

_LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def lock_keys(conn: PgConnection, keys: list[str]) -> None:
    """Take the transaction-scoped lock of every key (device ids), in the given (sorted) order.

    Every writer of every worker locks the devices of its batch in the same order before it
    runs the batch's jobs, so the throttle and ``cancel_last`` read a device's orders while no
    other worker can add one, and two batches can never wait for each other. One round trip:
    the statements go out in pipeline mode, and run in order."""
    with conn.raw.pipeline():
        for key in keys:
            conn.raw.execute(_LOCK_KEY, [key])


# --- schema --------------------------------------------------------------------------------------


def _version(conn: PgConnection) -> int:
    conn.raw.execute(
        "CREATE TABLE IF NOT EXISTS edgeorder_schema (version BIGINT NOT NULL, "
        "migrated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    return _max_version(conn)


def _max_version(conn: PgConnection) -> int:
    row = conn.raw.execute("SELECT MAX(version) FROM edgeorder_schema").fetchone()
    return int(row[0] or 0) if row is not None else 0


def _set_version(conn: PgConnection, version: int) -> None:
    conn.raw.execute("INSERT INTO edgeorder_schema (version) VALUES (%s)", [version])


def _lock_schema(conn: PgConnection) -> None:
    conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])


def migrate(conn: PgConnection, steps: Sequence[Sequence[str]]) -> int:
    """Apply the pending steps (already rendered), each in its own transaction, under the
    schema's advisory lock: workers starting together apply each step once."""
    return kit_migrate(
        conn,
        steps,
        version=_version,
        set_version=_set_version,
        lock=_lock_schema,
        begin="BEGIN",
    )


def schema_version(conn: PgConnection) -> int:
    """The version the database is at (0 before the first migration)."""
    exists = conn.raw.execute("SELECT to_regclass('edgeorder_schema') IS NOT NULL").fetchone()
    return _max_version(conn) if exists is not None and exists[0] else 0


# --- readers -------------------------------------------------------------------------------------


class PgReaders:
    """The readers' connections: a ``psycopg_pool.ConnectionPool`` of read-only sessions,
    opened on first use (no connect on the event loop) and closed with the service."""

    def __init__(self, url: str, *, size: int) -> None:
        self._url, self._size = url, size
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    def _open(self) -> psycopg_pool.ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                _psycopg()
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._size,
                    kwargs={
                        "autocommit": True,
                        "application_name": APPLICATION_NAME,
                        "options": _READONLY_OPTIONS,
                        "connect_timeout": 10,
                    },
                    name="ingest-readers",
                    # a session the server dropped (a restart, a failover) is replaced when
                    # it is taken, instead of failing the read that meets it
                    check=ConnectionPool.check_connection,
                    open=True,
                )
            return self._pool

    @contextmanager
    def acquire(self) -> Iterator[PgConnection]:
        with self._open().connection() as raw:
            yield PgConnection(raw)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
