"""A scratch PostgreSQL database per test, on the machine's server.

The server is the one at ``EDGEORDER_TEST_PG_URL`` (default the machine's,
``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth); ``.ci/run`` installs and starts
one from Debian's packages when it is missing. Each test gets a database of its own, created
before and dropped (with its sessions) after, so tests never see each other's rows and run in
any order. Without a reachable server the tests that need one are skipped -- unless
``EDGEORDER_REQUIRE_POSTGRES=1`` (CI sets it): then they fail, so a missing server can never
pass for a green run.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager

import pytest

__all__ = ["admin_url", "require_postgres", "scratch_database"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("EDGEORDER_TEST_PG_URL", DEFAULT_URL)


def _unreachable() -> str | None:
    """Why no test database can be made here (None: it can)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(admin_url(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {admin_url()}: {exc}"
    return None


def require_postgres() -> None:
    """Skip (or, with EDGEORDER_REQUIRE_POSTGRES=1, fail) when no server is reachable."""
    reason = _unreachable()
    if reason is None:
        return
    if os.environ.get("EDGEORDER_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def scratch_database() -> AbstractContextManager[str]:
    """The URL of a new, empty database on the test server, dropped at the end of the block
    (with its sessions)."""
    from edgeorder.bench.services import scratch_database as make

    return make(admin_url())
