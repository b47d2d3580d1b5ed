"""Operators, sessions and API tokens on a real SQLite file, with an injected clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store.db import open_db
from edgeorder.ingest.web import auth


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = open_db(tmp_path / "ingest.db")
    yield db.conn
    db.conn.close()


def _login(conn: sqlite3.Connection, password: str, now: datetime) -> auth.LoginResult:
    return auth.check_login(conn, "ops", password, max_failures=3, lockout_s=60, now=now)


def test_password_is_stored_as_argon2id(conn: sqlite3.Connection) -> None:
    assert auth.ensure_operator(conn, "ops", "s3cret-pass") is True
    (stored,) = conn.execute("SELECT password_hash FROM operators").fetchone()
    assert stored.startswith("$argon2id$")
    assert "s3cret-pass" not in stored


def test_lockout_starts_at_max_failures_and_ends_after_lockout_s(conn: sqlite3.Connection) -> None:
    auth.ensure_operator(conn, "ops", "right")
    t0 = p.utcnow()
    assert _login(conn, "wrong", t0).outcome is auth.LoginOutcome.BAD_CREDENTIALS
    assert _login(conn, "wrong", t0).outcome is auth.LoginOutcome.BAD_CREDENTIALS
    locked = _login(conn, "wrong", t0)
    assert locked.outcome is auth.LoginOutcome.LOCKED
    assert locked.locked_until == p.format_ts(t0 + timedelta(seconds=60))
    assert _login(conn, "right", t0 + timedelta(seconds=59)).outcome is auth.LoginOutcome.LOCKED
    assert _login(conn, "right", t0 + timedelta(seconds=61)).outcome is auth.LoginOutcome.OK


def test_success_resets_the_failure_count(conn: sqlite3.Connection) -> None:
    auth.ensure_operator(conn, "ops", "right")
    t0 = p.utcnow()
    for _ in range(2):
        _login(conn, "wrong", t0)
    assert _login(conn, "right", t0).outcome is auth.LoginOutcome.OK
    for _ in range(2):
        assert _login(conn, "wrong", t0).outcome is auth.LoginOutcome.BAD_CREDENTIALS


def test_session_lookup_and_expiry(conn: sqlite3.Connection) -> None:
    auth.ensure_operator(conn, "ops", "right")
    t0 = p.utcnow()
    cookie, session = auth.create_session(conn, "ops", ttl_s=100, now=t0)
    stored = conn.execute("SELECT token_hash FROM sessions").fetchone()[0]
    assert cookie not in stored  # only the hash is kept
    assert auth.lookup_session(conn, cookie, now=t0 + timedelta(seconds=99)) == session
    assert auth.lookup_session(conn, cookie, now=t0 + timedelta(seconds=100)) is None
    assert auth.lookup_session(conn, "other", now=t0) is None
    # Creating a session purges expired ones.
    auth.create_session(conn, "ops", ttl_s=100, now=t0 + timedelta(seconds=200))
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


def test_csrf_matches_only_the_sessions_token() -> None:
    session = auth.Session("ops", "token-a", "2099-01-01T00:00:00.000Z")
    assert auth.csrf_matches(session, "token-a")
    assert not auth.csrf_matches(session, "token-b")
    assert not auth.csrf_matches(session, None)
    assert not auth.csrf_matches(session, "")


def test_api_token_plaintext_is_returned_once(tmp_path: Path) -> None:
    db = open_db(tmp_path / "ingest.db")
    token = auth.create_api_token(db, "demo")
    stored = db.conn.execute("SELECT token_hash, name FROM api_tokens").fetchall()
    assert len(stored) == 1
    assert token not in stored[0][0]
    assert auth.verify_api_token(db.conn, token) == "demo"
    assert auth.verify_api_token(db.conn, token + "x") is None
    db.conn.close()


def test_empty_credentials_are_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        auth.ensure_operator(conn, "admin", "")
