"""Operators, sessions and API tokens on a real SQLite file through the service's own writer
and reader pool, with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edgeorder import protocol as p
from edgeorder.ingest.store.db import connect, open_db
from edgeorder.ingest.store.handle import Store
from edgeorder.ingest.store.reader import Reader
from edgeorder.ingest.store.writer import Writer
from edgeorder.ingest.web import auth


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    path = tmp_path / "ingest.db"
    open_db(path).conn.close()
    running = Store(Writer(path), Reader(path))
    running.writer.start()
    yield running
    await running.writer.stop()
    running.reader.close()


@pytest.fixture
def passwords() -> Iterator[auth.Passwords]:
    pool = auth.Passwords(workers=2)
    yield pool
    pool.close()


async def _login(
    store: Store, passwords: auth.Passwords, password: str, now: datetime, **kw: object
) -> auth.LoginResult:
    attempt = auth.LoginAttempt(
        username=str(kw.get("username", "ops")),
        password=password,
        max_failures=3,
        lockout_s=60,
        session_ttl_s=100,
    )
    return await auth.login(store, passwords, attempt, now=now)


async def test_password_is_stored_as_argon2id(store: Store, passwords: auth.Passwords) -> None:
    assert await auth.ensure_operator(store, passwords, "ops", "s3cret-pass") is True
    stored = await store.read(lambda c: c.execute("SELECT password_hash FROM operators").fetchone())
    assert stored[0].startswith("$argon2id$")
    assert "s3cret-pass" not in stored[0]
    assert await auth.ensure_operator(store, passwords, "ops", "s3cret-pass") is False


async def test_lockout_starts_at_max_failures_and_ends_after_lockout_s(
    store: Store, passwords: auth.Passwords
) -> None:
    await auth.ensure_operator(store, passwords, "ops", "right")
    t0 = p.utcnow()
    assert (await _login(store, passwords, "wrong", t0)).outcome is auth.LoginOutcome.BAD_PASSWORD
    assert (await _login(store, passwords, "wrong", t0)).outcome is auth.LoginOutcome.BAD_PASSWORD
    locked = await _login(store, passwords, "wrong", t0)
    assert locked.outcome is auth.LoginOutcome.LOCKED
    assert locked.locked_until == p.format_ts(t0 + timedelta(seconds=60))
    still = await _login(store, passwords, "right", t0 + timedelta(seconds=59))
    assert still.outcome is auth.LoginOutcome.LOCKED
    assert still.cookie is None
    after = await _login(store, passwords, "right", t0 + timedelta(seconds=61))
    assert after.outcome is auth.LoginOutcome.OK
    assert after.cookie is not None


async def test_concurrent_failures_all_count(store: Store, passwords: auth.Passwords) -> None:
    """Each failure is one writer job reading and updating the count: none is lost."""
    await auth.ensure_operator(store, passwords, "ops", "right")
    t0 = p.utcnow()
    results = await asyncio.gather(*(_login(store, passwords, "wrong", t0) for _ in range(3)))
    assert sorted(r.outcome.value for r in results) == ["bad_password", "bad_password", "locked"]


async def test_success_resets_the_failure_count(store: Store, passwords: auth.Passwords) -> None:
    await auth.ensure_operator(store, passwords, "ops", "right")
    t0 = p.utcnow()
    for _ in range(2):
        await _login(store, passwords, "wrong", t0)
    assert (await _login(store, passwords, "right", t0)).outcome is auth.LoginOutcome.OK
    for _ in range(2):
        result = await _login(store, passwords, "wrong", t0)
        assert result.outcome is auth.LoginOutcome.BAD_PASSWORD


async def test_an_unknown_user_costs_a_verify_and_writes_nothing(
    store: Store, passwords: auth.Passwords
) -> None:
    result = await _login(store, passwords, "x", p.utcnow(), username="mallory")
    assert result.outcome is auth.LoginOutcome.UNKNOWN_USER
    assert await store.read(lambda c: c.execute("SELECT COUNT(*) FROM operators").fetchone()) == (
        0,
    )


async def test_session_lookup_and_expiry(
    store: Store, passwords: auth.Passwords, tmp_path: Path
) -> None:
    await auth.ensure_operator(store, passwords, "ops", "right")
    t0 = p.utcnow()
    cookie = (await _login(store, passwords, "right", t0)).cookie
    assert cookie is not None
    conn = connect(tmp_path / "ingest.db", readonly=True)
    stored = conn.execute("SELECT token_hash FROM sessions").fetchone()[0]
    assert cookie not in stored  # only the hash is kept
    session = auth.lookup_session(conn, cookie, now=t0 + timedelta(seconds=99))
    assert session is not None
    assert session.username == "ops"
    assert auth.lookup_session(conn, cookie, now=t0 + timedelta(seconds=100)) is None
    assert auth.lookup_session(conn, "other", now=t0) is None
    # A new session purges expired ones; a login ends the caller's previous session.
    later = t0 + timedelta(seconds=200)
    attempt = auth.LoginAttempt("ops", "right", 3, 60, 100, previous_cookie=cookie)
    assert (await auth.login(store, passwords, attempt, now=later)).cookie is not None
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    conn.close()


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


async def test_api_token_through_the_writer(store: Store) -> None:
    token = await store.write(lambda conn: auth.create_api_token(conn, "ci"))
    assert await store.read(lambda conn: auth.verify_api_token(conn, token)) == "ci"


async def test_empty_credentials_are_refused(store: Store, passwords: auth.Passwords) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        await auth.ensure_operator(store, passwords, "admin", "")
