"""Which order platform ingest talks to, and how: the connectors' own settings.

They live here, not in ``ingest.settings``, so a connector never imports ingest's process
settings (an import-linter contract in pyproject.toml checks it); ``ingest.settings.Settings``
holds one of these as its ``connector`` field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["ConnectorSettings"]


class ConnectorSettings(BaseModel):
    """Which order platform ingest talks to, and how."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ordercore", "nuvemshop", "evendi", "oneentry"] = "ordercore"
    base_url: str = "http://127.0.0.1:8081"
    token: SecretStr = SecretStr("")
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    options: dict[str, Any] = Field(default_factory=dict)
    """Platform-specific settings (store id, organizationExternalId, storage marker, ...)."""
