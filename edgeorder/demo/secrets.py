"""The demo's generated secrets, kept in ``D/secrets.json`` (mode 0600) across restarts.

Each secret is generated once and re-used; ``EDGEORDER_ADMIN_PASSWORD`` and
``EDGEORDER_ORDERCORE_TOKEN`` override theirs. The file always holds the values in force, so a
user (or a test) reads the order-core token and the API token from one place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "ENV_OVERRIDES",
    "DemoSecrets",
    "SecretsFileError",
    "load_secrets",
    "ordercore_token_specs",
    "save_secrets",
]

ENV_OVERRIDES: dict[str, str] = {
    "admin_password": "EDGEORDER_ADMIN_PASSWORD",
    "ordercore_token": "EDGEORDER_ORDERCORE_TOKEN",
}
"""Secret name -> environment variable that replaces the stored value."""


class SecretsFileError(ValueError):
    """``secrets.json`` exists but cannot be used (not JSON, wrong shape)."""


@dataclass(frozen=True)
class DemoSecrets:
    """Every secret the demo needs. ``api_token`` is empty until the registry minted one."""

    admin_password: str
    ordercore_token: str
    ingest_mqtt_password: str
    webhook_secret: str
    api_token: str = ""


def _generators() -> dict[str, Callable[[], str]]:
    return {
        "admin_password": lambda: secrets.token_urlsafe(12),
        "ordercore_token": lambda: "oc_" + secrets.token_urlsafe(24),
        "ingest_mqtt_password": lambda: secrets.token_urlsafe(18),
        "webhook_secret": lambda: secrets.token_urlsafe(24),
        "api_token": lambda: "",  # minted by ingest's registry, see edgeorder.demo.provision
    }


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SecretsFileError(f"{path}: cannot read secrets: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SecretsFileError(f"{path}: expected a JSON object of strings")
    return data


def load_secrets(path: Path, env: Mapping[str, str] | None = None) -> DemoSecrets:
    """The stored secrets, with missing ones generated and env overrides applied.

    Nothing is written here; call ``save_secrets`` to persist the result.
    """
    env = os.environ if env is None else env
    stored = _read(path)
    values: dict[str, str] = {}
    for name, generate in _generators().items():
        override = env.get(ENV_OVERRIDES.get(name, ""), "")
        values[name] = override or stored.get(name) or generate()
    return DemoSecrets(**values)


def save_secrets(path: Path, value: DemoSecrets) -> None:
    """Write ``value`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(value), out, indent=2)
        out.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ordercore_token_specs(value: DemoSecrets) -> tuple[list[str], str]:
    """The order core's token specs and ingest's token.

    ``ordercore_token`` (the one the banner shows, for you) is an admin; ingest gets its own
    ``app`` token, as a deployment should, derived from it (HMAC) so nothing new is stored.
    """
    key = value.ordercore_token.encode()
    digest = hmac.new(key, b"edgeorder demo: ingest's app token", hashlib.sha256)
    ingest = "oc_ingest_" + digest.hexdigest()[:32]
    specs = [f"demo={value.ordercore_token}:role=admin", f"ingest={ingest}:role=app"]
    return specs, ingest
