"""HMAC-SHA256 signing and verifying of webhook bodies: the one signer of every part.

Two schemes use it:

- edgeorder's own (the order core signs, ingest verifies): ``X-Edgeorder-Timestamp: <unix
  seconds of this attempt>`` and ``X-Edgeorder-Signature: sha256=<hex HMAC(secret,
  "<timestamp>." + raw body)>``; the timestamp is signed with the body, so a receiver can refuse
  a delivery captured and replayed later (how old is too old is the receiver's choice);
- a platform's plain one (Nuvemshop's ``X-Linkedstore-HMAC-SHA256``): hex HMAC of the raw body.

Verifying always compares in constant time (``hmac.compare_digest`` over bytes, so a header with
non-ASCII characters is a mismatch, not a ``TypeError``).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "hex_digest", "sign", "verify", "verify_hex"]

SIGNATURE_HEADER = "X-Edgeorder-Signature"
TIMESTAMP_HEADER = "X-Edgeorder-Timestamp"


def hex_digest(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` with ``secret`` (UTF-8)."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_hex(secret: str, message: bytes, given: str) -> bool:
    """Whether ``given`` is ``hex_digest(secret, message)`` (constant-time; case-insensitive)."""
    expected = hex_digest(secret, message).encode()
    return hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace"))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Edgeorder-Signature`` value: ``sha256=<hex HMAC("<timestamp>." + body)>``."""
    return "sha256=" + hex_digest(secret, str(timestamp).encode() + b"." + body)


def verify(secret: str, body: bytes, header: str, timestamp: int) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` (constant-time compare). Compare the
    timestamp with the clock as well: this says only that the secret's holder signed it."""
    expected = sign(secret, body, timestamp).encode()
    return hmac.compare_digest(expected, header.encode("utf-8", "replace"))
