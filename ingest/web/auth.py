"""Operator accounts, sessions and API tokens, on ingest's SQLite tables.

Synchronous functions over one ``sqlite3.Connection`` (or a ``sqlite_utils.Database``); the web
layer calls them through ``WebDb`` so they never run on the event loop. Passwords are argon2id
hashes; session cookies and API tokens are stored only as their sha256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edgeorder.protocol import format_ts, utcnow

__all__ = [
    "LoginOutcome",
    "LoginResult",
    "Session",
    "check_login",
    "create_api_token",
    "create_session",
    "csrf_matches",
    "delete_session",
    "ensure_operator",
    "lookup_session",
    "verify_api_token",
]

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so both answers cost one argon2 verify.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

Db = sqlite_utils.Database | sqlite3.Connection


def _raw(db: Db) -> sqlite3.Connection:
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ensure_operator(db: Db, username: str, password: str) -> bool:
    """Create operator ``username`` or set its password; True if a row was written.

    An unchanged password is left alone (no re-hash); a changed one also lifts a lockout.
    """
    if not username or not password:
        raise ValueError("operator username and password must not be empty")
    conn = _raw(db)
    row = conn.execute(
        "SELECT password_hash FROM operators WHERE username = ?", (username,)
    ).fetchone()
    if row is not None and _verify(row[0], password):
        return False
    hashed, now = _HASHER.hash(password), format_ts(utcnow())
    with _transaction(conn):
        conn.execute(
            "INSERT INTO operators (username, password_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
            "failed_logins = 0, locked_until = NULL",
            (username, hashed, now),
        )
    return True


def create_api_token(db: Db, name: str) -> str:
    """A new REST API bearer token named ``name``; the plaintext is returned only here."""
    if not name:
        raise ValueError("API token name must not be empty")
    token = "eo_" + secrets.token_urlsafe(32)
    conn = _raw(db)
    with _transaction(conn):
        conn.execute(
            "INSERT INTO api_tokens (token_hash, name, created_at) VALUES (?, ?, ?)",
            (_sha256(token), name, format_ts(utcnow())),
        )
    return token


def verify_api_token(conn: sqlite3.Connection, token: str) -> str | None:
    """The token's name if ``token`` is a known API token, else None."""
    row = conn.execute(
        "SELECT name FROM api_tokens WHERE token_hash = ?", (_sha256(token),)
    ).fetchone()
    return None if row is None else str(row[0])


class LoginOutcome(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    locked_until: str | None = None


def check_login(
    conn: sqlite3.Connection,
    username: str,
    password: str,
    *,
    max_failures: int,
    lockout_s: int,
    now: datetime | None = None,
) -> LoginResult:
    """Verify a login and count failures; call inside a write transaction.

    A locked account answers LOCKED without looking at the password; the ``max_failures``-th
    consecutive failure locks it for ``lockout_s``.
    """
    now = now or utcnow()
    row = conn.execute(
        "SELECT password_hash, failed_logins, locked_until FROM operators WHERE username = ?",
        (username,),
    ).fetchone()
    if row is None:
        _verify(_DUMMY_HASH, password)
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    hashed, failures, locked_until = row[0], int(row[1]), row[2]
    if locked_until is not None and locked_until > format_ts(now):
        return LoginResult(LoginOutcome.LOCKED, locked_until)
    if _verify(hashed, password):
        conn.execute(
            "UPDATE operators SET failed_logins = 0, locked_until = NULL WHERE username = ?",
            (username,),
        )
        return LoginResult(LoginOutcome.OK)
    failures += 1
    if failures >= max_failures:
        until = format_ts(now + timedelta(seconds=lockout_s))
        conn.execute(
            "UPDATE operators SET failed_logins = 0, locked_until = ? WHERE username = ?",
            (until, username),
        )
        return LoginResult(LoginOutcome.LOCKED, until)
    conn.execute(
        "UPDATE operators SET failed_logins = ?, locked_until = NULL WHERE username = ?",
        (failures, username),
    )
    return LoginResult(LoginOutcome.BAD_CREDENTIALS)


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    expires_at: str


def create_session(
    conn: sqlite3.Connection, username: str, *, ttl_s: int, now: datetime | None = None
) -> tuple[str, Session]:
    """A new session for ``username``: (cookie value, session). Purges expired sessions."""
    now = now or utcnow()
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = format_ts(now + timedelta(seconds=ttl_s))
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (format_ts(now),))
    conn.execute(
        "INSERT INTO sessions (token_hash, username, csrf_token, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (_sha256(cookie), username, csrf, format_ts(now), expires),
    )
    return cookie, Session(username, csrf, expires)


def lookup_session(
    conn: sqlite3.Connection, cookie: str, *, now: datetime | None = None
) -> Session | None:
    """The live session behind a cookie value, or None (unknown or expired)."""
    row = conn.execute(
        "SELECT username, csrf_token, expires_at FROM sessions WHERE token_hash = ?",
        (_sha256(cookie),),
    ).fetchone()
    if row is None or row[2] <= format_ts(now or utcnow()):
        return None
    return Session(str(row[0]), str(row[1]), str(row[2]))


def delete_session(conn: sqlite3.Connection, cookie: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_sha256(cookie),))


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Constant-time comparison of a presented CSRF token with the session's."""
    return presented is not None and hmac.compare_digest(
        session.csrf_token.encode(), presented.encode()
    )


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


class _transaction:
    """``BEGIN IMMEDIATE``/``COMMIT`` unless the caller already holds a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._own = False

    def __enter__(self) -> None:
        self._own = not self._conn.in_transaction
        if self._own:
            self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self._own:
            return
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
