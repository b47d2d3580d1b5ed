"""``--data-dir`` / ``--db-url``: which database the registry tools work on.

The same choice as ``edgeorder ingest``: ``--db-url postgresql://USER@HOST:PORT/DB`` (env
``EDGEORDER_INGEST_DB_URL``) names the PostgreSQL that the workers share; without it the
tools open ``ingest.db`` in ``--data-dir`` (env ``EDGEORDER_INGEST_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edgeorder.ingest.settings import Settings
from edgeorder.ingest.store.database import Conn, Database
from edgeorder.ingest.store.fanout import notify

__all__ = ["add_database_options", "database_of", "missing_database", "tell_workers"]

DATA_DIR_ENV = "EDGEORDER_INGEST_DATA_DIR"
DB_URL_ENV = "EDGEORDER_INGEST_DB_URL"


def add_database_options(parser: argparse.ArgumentParser, *, after_action: bool = False) -> None:
    """``--data-dir`` and ``--db-url`` on ``parser``. ``after_action``: the copies a
    subcommand accepts too ("device add X --db-url U"), without defaults of their own."""
    default = argparse.SUPPRESS if after_action else None
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default if after_action else os.environ.get(DATA_DIR_ENV),
        help=f"ingest data directory with ingest.db (env {DATA_DIR_ENV}; "
        "default ./edgeorder-data/ingest)",
    )
    parser.add_argument(
        "--db-url",
        default=default if after_action else os.environ.get(DB_URL_ENV),
        help=f"postgresql://USER@HOST:PORT/DB of the workers' shared database (env {DB_URL_ENV});"
        " wins over --data-dir",
    )


def database_of(args: argparse.Namespace) -> Database:
    """The database the options name; ``DatabaseUrlError`` (a ValueError) for a bad URL."""
    data_dir = Path(args.data_dir or Settings().data_dir)
    return Database.for_service(data_dir, args.db_url or None)


def missing_database(database: Database) -> str | None:
    """Why a tool that only reads must not go on: a SQLite file that does not exist (a typo
    in ``--data-dir`` would otherwise create an empty registry and list nothing)."""
    if database.path is None or database.path.exists():
        return None
    return (
        f"no ingest database at {database.path} (check --data-dir or {DATA_DIR_ENV}; "
        "'edgeorder device add' or 'edgeorder ingest' creates it)"
    )


def tell_workers(conn: Conn, kind: str, device_id: str | None) -> None:
    """Running workers of a shared database re-read what changed (a ``kind`` notice); a
    SQLite ingest notices a new device by itself, and other changes at its next start."""
    notify(conn, [(kind, device_id, "cli")], origin="cli")
