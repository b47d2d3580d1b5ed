"""Settings of the order core process: one pydantic model, validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_PORT", "SEED_CATALOG", "Settings"]

DEFAULT_PORT = 8081
SEED_CATALOG = Path(__file__).with_name("catalog_seed.json")
"""The demo catalog shipped with the package (``--seed-catalog`` without a path)."""


class Settings(BaseModel):
    """Everything the order core needs to run. Webhook delays are settings so tests stay fast."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    tokens: list[str] = Field(min_length=1, description="accepted bearer tokens")
    idempotency_ttl_days: float = Field(7.0, gt=0)
    catalog_seed: Path | None = None
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_backoff_base_s: float = Field(1.0, gt=0)
    webhook_backoff_max_s: float = Field(300.0, gt=0)
    webhook_max_attempts: int = Field(20, ge=1)
    write_batch_max: int = Field(512, ge=1, description="most writes per group commit")
    health_webhook_age_s: float = Field(
        300.0, gt=0, description="/healthz is degraded while a delivery is pending longer"
    )
    db_filename: str = "ordercore.sqlite3"

    @field_validator("tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        """Accept ``"a,b"`` as well as ``["a", "b"]``; blanks are dropped."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            return value
        out: list[Any] = []
        for item in items:
            if isinstance(item, str):
                out.extend(t.strip() for t in item.split(","))
            else:
                out.append(item)
        return [t for t in out if t != ""]

    @property
    def db_path(self) -> Path:
        return self.data_dir / self.db_filename

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``EDGEORDER_ORDERCORE_*`` variables; ``overrides`` (not None) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if "EDGEORDER_ORDERCORE_DATA_DIR" in env:
            values["data_dir"] = env["EDGEORDER_ORDERCORE_DATA_DIR"]
        if "EDGEORDER_ORDERCORE_HOST" in env:
            values["host"] = env["EDGEORDER_ORDERCORE_HOST"]
        if "EDGEORDER_ORDERCORE_PORT" in env:
            values["port"] = env["EDGEORDER_ORDERCORE_PORT"]
        if "EDGEORDER_ORDERCORE_TOKEN" in env:
            values["tokens"] = env["EDGEORDER_ORDERCORE_TOKEN"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
