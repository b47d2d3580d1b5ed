"""MQTT credentials in Mosquitto's own password-file format.

Device and service-account passwords are stored only as Mosquitto ``$7$`` hashes
(PBKDF2-HMAC-SHA512), so ``edgeorder broker-auth`` can write the registry straight into a
``password_file`` and the embedded broker can check the very same hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["generate_password", "hash_password", "verify_password"]

_ITERATIONS = 101  # mosquitto_passwd's default for $7$
_SALT_BYTES = 12


def generate_password(nbytes: int = 18) -> str:
    """A random URL-safe password (``nbytes`` of entropy, 24 characters by default)."""
    return secrets.token_urlsafe(nbytes)


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    """``$7$ITER$SALT$HASH`` as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(hashed: str, password: str) -> bool:
    """True if ``password`` matches a Mosquitto ``$7$`` (or legacy ``$6$``) hash."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, expected = int(parts[2]), _unb64(parts[3]), _unb64(parts[4])
            digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
        elif len(parts) == 4 and parts[1] == "6":
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
            digest = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
