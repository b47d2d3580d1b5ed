"""SQL of the dashboard's operators, sessions and API tokens.

Plain functions of a ``Conn`` (either backend). Writers run as jobs of the service's one
group-commit writer (``ingest.store.writer``), so they hold SQLite's write lock for a few
statements only: nothing here hashes or verifies a password (that is ``ingest.web.auth``'s job,
done before the job is submitted). Secrets are stored as hashes only: argon2id for passwords,
sha256 for session cookies and API tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeorder.ingest.store.database import Conn

__all__ = [
    "LoginRow",
    "SessionRow",
    "api_token_name",
    "delete_session",
    "insert_api_token",
    "insert_session",
    "login_row",
    "password_hash",
    "record_login_failure",
    "record_login_success",
    "session_row",
    "upsert_operator",
]


@dataclass(frozen=True)
class LoginRow:
    """What a login needs to know about an operator before it verifies the password."""

    password_hash: str
    locked_until: str | None


@dataclass(frozen=True)
class SessionRow:
    username: str
    csrf_token: str
    expires_at: str


def password_hash(conn: Conn, username: str) -> str | None:
    row = conn.execute(
        "SELECT password_hash FROM operators WHERE username = ?", (username,)
    ).fetchone()
    return None if row is None else str(row[0])


def login_row(conn: Conn, username: str) -> LoginRow | None:
    row = conn.execute(
        "SELECT password_hash, locked_until FROM operators WHERE username = ?", (username,)
    ).fetchone()
    return None if row is None else LoginRow(str(row[0]), row[1])


def upsert_operator(conn: Conn, username: str, hashed: str, now: str) -> None:
    """Create the operator or replace its password hash (which also lifts a lockout and ends
    every session opened with the old password: a changed password is often a leaked one)."""
    conn.execute(
        "INSERT INTO operators (username, password_hash, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
        "failed_logins = 0, locked_until = NULL",
        (username, hashed, now),
    )
    conn.execute("DELETE FROM sessions WHERE username = ?", (username,))


def record_login_failure(
    conn: Conn, username: str, *, max_failures: int, locked_until: str
) -> str | None:
    """Count one failed login; the ``max_failures``-th in a row locks the account until
    ``locked_until``. Returns the lock's end when this failure locked it (else None).

    Counted in one statement, so failures at the same time -- through any worker of a shared
    database -- all count."""
    row = conn.execute(
        "UPDATE operators SET failed_logins = failed_logins + 1 WHERE username = ? "
        "RETURNING failed_logins",
        (username,),
    ).fetchone()
    if row is None or int(row[0]) < max_failures:
        return None
    conn.execute(
        "UPDATE operators SET failed_logins = 0, locked_until = ? WHERE username = ?",
        (locked_until, username),
    )
    return locked_until


def record_login_success(conn: Conn, username: str, *, verified_hash: str, now: str) -> bool:
    """Reset the failure count, unless the account was locked, or its password changed, since
    the password was verified against ``verified_hash`` (then False: the login fails)."""
    row = conn.execute(
        "UPDATE operators SET failed_logins = 0, locked_until = NULL "
        "WHERE username = ? AND password_hash = ? AND (locked_until IS NULL OR locked_until <= ?) "
        "RETURNING username",
        (username, verified_hash, now),
    ).fetchone()
    return row is not None


def insert_session(
    conn: Conn,
    *,
    token_hash: str,
    username: str,
    csrf_token: str,
    now: str,
    expires_at: str,
) -> None:
    """A new session; expired sessions are purged on the way."""
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
    conn.execute(
        "INSERT INTO sessions (token_hash, username, csrf_token, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (token_hash, username, csrf_token, now, expires_at),
    )


def session_row(conn: Conn, token_hash: str) -> SessionRow | None:
    row = conn.execute(
        "SELECT username, csrf_token, expires_at FROM sessions WHERE token_hash = ?",
        (token_hash,),
    ).fetchone()
    return None if row is None else SessionRow(str(row[0]), str(row[1]), str(row[2]))


def delete_session(conn: Conn, token_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def insert_api_token(conn: Conn, token_hash: str, name: str, now: str) -> None:
    conn.execute(
        "INSERT INTO api_tokens (token_hash, name, created_at) VALUES (?, ?, ?)",
        (token_hash, name, now),
    )


def api_token_name(conn: Conn, token_hash: str) -> str | None:
    row = conn.execute("SELECT name FROM api_tokens WHERE token_hash = ?", (token_hash,)).fetchone()
    return None if row is None else str(row[0])
