"""The numbered-migration runner: ``migrate(conn, steps, ...)``.

``steps[n]`` takes a schema from version ``n`` to ``n + 1``: a sequence of statements, or a
function of the connection (a step that must compute something); a shipped step is never
edited, a new one is appended. Each step runs in its own transaction that
also records the new version, so a crash leaves the schema at a whole version. Before reading
the version, each transaction calls ``lock(conn)``: on a database that several processes share
(PostgreSQL) that is a transaction-scoped advisory lock, so workers starting together apply
every step exactly once; the version is read again under the lock. SQLite needs no hook:
``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from edgeorder.kit.tx import BEGIN_IMMEDIATE, C, transaction

__all__ = ["SchemaTooNewError", "Step", "migrate"]


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer release than this one."""


Step = Sequence[str] | Callable[[C], object]


def migrate(
    conn: C,
    steps: Sequence[Step[C]],
    *,
    version: Callable[[C], int],
    set_version: Callable[[C, int], None],
    lock: Callable[[C], None] | None = None,
    begin: str = BEGIN_IMMEDIATE,
) -> int:
    """Apply every step newer than ``version(conn)``; the schema version reached."""
    while True:
        with transaction(conn, begin=begin):
            if lock is not None:
                lock(conn)
            current = version(conn)
            if current > len(steps):
                raise SchemaTooNewError(
                    f"database schema version {current} is newer than this release's "
                    f"({len(steps)}): upgrade edgeorder"
                )
            if current == len(steps):
                return current
            _apply(conn, steps[current])
            set_version(conn, current + 1)


def _apply(conn: C, step: Step[C]) -> None:
    if callable(step):
        step(conn)
        return
    for statement in step:
        conn.execute(statement)
