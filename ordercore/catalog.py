"""The catalog: SKUs with prices in cents, their merchants, and the seed file format. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from edgeorder.ordercore.fields import WHOLE, RecordId

__all__ = [
    "CURRENCY_PATTERN",
    "Catalog",
    "CatalogSeed",
    "CatalogSku",
    "MerchantIn",
    "SkuIn",
    "load_seed",
]

CURRENCY_PATTERN = r"^[A-Z]{3}$"
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


@dataclass(frozen=True, slots=True)
class CatalogSku:
    """One sellable SKU as the order core prices it."""

    sku_id: int
    product_id: int
    sku: str
    description: str
    price: int
    currency: str
    merchant_id: str
    merchant_name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "ProductId": self.product_id,
            "SkuId": self.sku_id,
            "Sku": self.sku,
            "SkuDescription": self.description,
            "Price": self.price,
            "Currency": self.currency,
            "MerchantId": self.merchant_id,
            "MerchantName": self.merchant_name,
        }


class Catalog:
    """In-memory catalog cache, so a checkout never re-reads the database for prices."""

    def __init__(self, skus: list[CatalogSku] | None = None) -> None:
        self._by_sku: dict[str, CatalogSku] = {}
        self._by_id: dict[int, CatalogSku] = {}
        for sku in skus or []:
            self.put(sku)

    def put(self, sku: CatalogSku) -> None:
        old = self._by_id.get(sku.sku_id)
        if old is not None:
            self._by_sku.pop(old.sku, None)
        self._by_sku[sku.sku] = sku
        self._by_id[sku.sku_id] = sku

    def by_sku(self, sku: str) -> CatalogSku | None:
        return self._by_sku.get(sku)

    def by_id(self, sku_id: int) -> CatalogSku | None:
        return self._by_id.get(sku_id)

    def all(self) -> list[CatalogSku]:
        return sorted(self._by_id.values(), key=lambda s: s.sku_id)

    def __len__(self) -> int:
        return len(self._by_id)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


NOT_BLANK = r"[^\x00-\x20\x7f]"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


class MerchantIn(_In):
    MerchantId: Annotated[str, Field(min_length=1, max_length=36)]
    MerchantName: Name


class SkuIn(_In):
    """Body of ``POST /api/sku`` and one entry of the seed file."""

    Sku: Annotated[str, Field(pattern=SKU_PATTERN)]
    SkuDescription: Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK)]
    Price: Annotated[StrictInt, Field(ge=0, le=10**12, description="unit price in cents"), WHOLE]
    Currency: Annotated[str, Field(pattern=CURRENCY_PATTERN)]
    MerchantId: Annotated[str, Field(min_length=1, max_length=36)]
    MerchantName: Annotated[Name | None, Field(description="required when the merchant is new")] = (
        None
    )
    ProductId: RecordId | None = None
    SkuId: RecordId | None = None


class CatalogSeed(_In):
    """The seed file: ``{"Merchants": [...], "Skus": [...]}``."""

    Merchants: list[MerchantIn] = []
    Skus: list[SkuIn]


def load_seed(path: Path) -> CatalogSeed:
    """Read and validate a seed file; ApiError-free: raises ValueError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return CatalogSeed.model_validate(data)
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"catalog seed {path}: {exc}") from exc


def sku_from_row(row: dict[str, Any]) -> CatalogSku:
    """A CatalogSku from a ``skus`` row joined with its merchant's name."""
    return CatalogSku(
        sku_id=row["sku_id"],
        product_id=row["product_id"],
        sku=row["sku"],
        description=row["description"],
        price=row["price"],
        currency=row["currency"],
        merchant_id=row["merchant_id"],
        merchant_name=row["merchant_name"],
    )
