"""Settings of the order core process: one pydantic model, validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgeorder.ordercore.principals import Token, TokenSpecError, parse_tokens

__all__ = ["DEFAULT_PORT", "SEED_CATALOG", "Settings", "read_tokens_file"]

DEFAULT_PORT = 8081
SEED_CATALOG = Path(__file__).with_name("catalog_seed.json")
"""The demo catalog shipped with the package (``--seed-catalog`` without a path)."""


class Settings(BaseModel):
    """Everything the order core needs to run. Webhook delays are settings so tests stay fast."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    tokens: list[Token] = Field(
        min_length=1,
        description="accepted bearer tokens and their principals: specs "
        "'NAME=SECRET:role=ROLE[:KEY=VALUE]' or bare secrets (admin), see principals.py",
    )
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
    def _parse_tokens(cls, value: Any) -> Any:
        """Token specs as ``"a,b"`` or ``["a", "b"]`` (blanks dropped), or Token objects."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            return value
        specs: list[str] = []
        tokens: list[Any] = []
        for item in items:
            if isinstance(item, str):
                specs.extend(t.strip() for t in item.split(",") if t.strip())
            else:
                tokens.append(item)
        try:
            return tokens + parse_tokens(specs)
        except TokenSpecError as exc:
            raise ValueError(str(exc)) from exc

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
        specs: list[str] = []
        tokens = overrides.pop("tokens", None)
        if tokens is not None:
            specs.extend(tokens)
        elif "EDGEORDER_ORDERCORE_TOKEN" in env:
            specs.append(env["EDGEORDER_ORDERCORE_TOKEN"])
        tokens_file = overrides.pop("tokens_file", None) or env.get(
            "EDGEORDER_ORDERCORE_TOKENS_FILE"
        )
        if tokens_file:
            specs.extend(read_tokens_file(Path(tokens_file)))
        values["tokens"] = specs
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def read_tokens_file(path: Path) -> list[str]:
    """Token specs of a tokens file: one per line; blank lines and ``#`` comments skipped.

    A line that does not parse is a ValueError naming ``path:line`` (never the secret).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"tokens file {path}: {exc}") from exc
    specs: list[str] = []
    for number, line in enumerate(lines, start=1):
        spec = line.strip()
        if not spec or spec.startswith("#"):
            continue
        if "," in spec:
            raise ValueError(f"{path}:{number}: one token per line (no ',')")
        try:
            parse_tokens([spec])
        except TokenSpecError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
        specs.append(spec)
    return specs
