"""Operator logins, sessions and API tokens: the hashing and the decisions (SQL lives in
``ingest.store.operators``).

Passwords are argon2id hashes; session cookies and API tokens are stored only as their sha256.
argon2 is slow and memory-hungry on purpose (~64 MiB per verify), so it runs on ``Passwords``'
own small thread pool -- a burst of logins queues there instead of taking every thread, and
argon2-cffi releases the GIL, so the event loop keeps serving -- and never inside a write
transaction: a login reads the operator's row, verifies the password, and only then submits one
short job to the service's group-commit writer. Pressed buttons keep being recorded whatever
the logins do.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edgeorder.ingest.store import operators
from edgeorder.ingest.store.database import Conn, handle
from edgeorder.ingest.store.db import atomic
from edgeorder.ingest.store.handle import Store
from edgeorder.protocol import format_ts, utcnow

if TYPE_CHECKING:
    from edgeorder.ingest.store.registry import Db

__all__ = [
    "LoginAttempt",
    "LoginOutcome",
    "LoginResult",
    "Passwords",
    "Session",
    "create_api_token",
    "csrf_matches",
    "delete_session",
    "ensure_operator",
    "login",
    "lookup_session",
    "verify_api_token",
]

_HASHER = PasswordHasher()
# Verified against when the account is unknown or locked, so every login costs one verify.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def _sha256(secret: str) -> str:
    """Of a cookie or token as the client sent it: header bytes that are not UTF-8 arrive as
    surrogates, hash to nothing known and are refused, never an encoding error (a 500)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


class Passwords:
    """argon2id off the event loop, at most ``workers`` hashes or verifies at a time."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="argon2")

    async def verify(self, hashed: str, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, _verify, hashed, password
        )

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, _HASHER.hash, password)

    def close(self) -> None:
        """Stop taking work (a check already running finishes on its thread)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


# --- operators -------------------------------------------------------------------------------


async def ensure_operator(store: Store, passwords: Passwords, username: str, password: str) -> bool:
    """Create operator ``username`` or set its password; True if a row was written.

    An unchanged password is left alone (no re-hash); a changed one also lifts a lockout.
    """
    if not username or not password:
        raise ValueError("operator username and password must not be empty")
    current = await store.read(partial(operators.password_hash, username=username))
    if current is not None and await passwords.verify(current, password):
        return False
    hashed = await passwords.hash(password)
    now = format_ts(utcnow())
    await store.write(partial(operators.upsert_operator, username=username, hashed=hashed, now=now))
    return True


# --- login -------------------------------------------------------------------------------------


class LoginOutcome(StrEnum):
    """Why a login ended as it did: for the log only -- every failure answers the same."""

    OK = "ok"
    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"
    LOCKED = "locked"


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    expires_at: str


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    locked_until: str | None = None
    cookie: str | None = None
    """The new session's cookie value (only when ``outcome`` is OK)."""


@dataclass(frozen=True)
class LoginAttempt:
    username: str
    password: str
    max_failures: int
    lockout_s: int
    session_ttl_s: int
    previous_cookie: str | None = None
    """The caller's old session, ended by a successful login (no session fixation)."""


async def login(
    store: Store, passwords: Passwords, attempt: LoginAttempt, *, now: datetime | None = None
) -> LoginResult:
    """Verify a login; count a failure (the ``max_failures``-th in a row locks the account
    for ``lockout_s``) or open a session. A locked account is refused whatever the password.

    Every attempt verifies exactly one argon2 hash (a dummy one for an unknown or locked
    account), so neither timing nor answers tell which usernames exist.
    """
    now = now or utcnow()
    row = await store.read(partial(operators.login_row, username=attempt.username))
    locked = row is not None and row.locked_until is not None and row.locked_until > format_ts(now)
    usable = row is not None and not locked
    verified = await passwords.verify(
        row.password_hash if row is not None and usable else _DUMMY_HASH, attempt.password
    )
    if row is None:
        return LoginResult(LoginOutcome.UNKNOWN_USER)
    if locked:
        return LoginResult(LoginOutcome.LOCKED, row.locked_until)
    if not verified:
        return await _failed(store, attempt, now)
    cookie = secrets.token_urlsafe(32)
    opened = await store.write(partial(_open_session, attempt, row.password_hash, cookie, now))
    if not opened:  # locked (or re-keyed) by a concurrent request since the read
        return LoginResult(LoginOutcome.LOCKED)
    return LoginResult(LoginOutcome.OK, cookie=cookie)


async def _failed(store: Store, attempt: LoginAttempt, now: datetime) -> LoginResult:
    until = format_ts(now + timedelta(seconds=attempt.lockout_s))
    locked_until = await store.write(
        partial(
            operators.record_login_failure,
            username=attempt.username,
            max_failures=attempt.max_failures,
            locked_until=until,
        )
    )
    if locked_until is None:
        return LoginResult(LoginOutcome.BAD_PASSWORD)
    return LoginResult(LoginOutcome.LOCKED, locked_until)


def _open_session(
    attempt: LoginAttempt, verified_hash: str, cookie: str, now: datetime, conn: Conn
) -> bool:
    """Writer job: reset the failure count and store the new session (False: refused)."""
    stamp = format_ts(now)
    if not operators.record_login_success(
        conn, attempt.username, verified_hash=verified_hash, now=stamp
    ):
        return False
    if attempt.previous_cookie:
        operators.delete_session(conn, _sha256(attempt.previous_cookie))
    operators.insert_session(
        conn,
        token_hash=_sha256(cookie),
        username=attempt.username,
        csrf_token=secrets.token_urlsafe(32),
        now=stamp,
        expires_at=format_ts(now + timedelta(seconds=attempt.session_ttl_s)),
    )
    return True


# --- sessions ----------------------------------------------------------------------------------


def lookup_session(conn: Conn, cookie: str, *, now: datetime | None = None) -> Session | None:
    """The live session behind a cookie value, or None (unknown or expired)."""
    row = operators.session_row(conn, _sha256(cookie))
    if row is None or row.expires_at <= format_ts(now or utcnow()):
        return None
    return Session(row.username, row.csrf_token, row.expires_at)


def delete_session(conn: Conn, cookie: str) -> None:
    """Writer job: end the session behind a cookie value."""
    operators.delete_session(conn, _sha256(cookie))


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Constant-time comparison of a presented CSRF token with the session's."""
    return presented is not None and hmac.compare_digest(
        session.csrf_token.encode(), presented.encode()
    )


# --- API tokens --------------------------------------------------------------------------------


def create_api_token(db: Db, name: str) -> str:
    """A new REST API bearer token named ``name``; the plaintext is returned only here.

    Synchronous, for the CLI and the demo's provisioning (before the service runs) and as a
    writer job (``store.write(lambda conn: create_api_token(conn, name))``).
    """
    if not name:
        raise ValueError("API token name must not be empty")
    token = "eo_" + secrets.token_urlsafe(32)
    conn = handle(db)
    with atomic(conn):
        operators.insert_api_token(conn, _sha256(token), name, format_ts(utcnow()))
    return token


def verify_api_token(conn: Conn, token: str) -> str | None:
    """The token's name if ``token`` is a known API token, else None."""
    return operators.api_token_name(conn, _sha256(token))
