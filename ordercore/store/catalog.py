"""Catalog rows: SKUs and merchants. Functions of a sqlite3 connection."""

from __future__ import annotations

import sqlite3

from edgeorder.ordercore.catalog import CatalogSeed, CatalogSku, SkuIn, sku_from_row
from edgeorder.ordercore.errors import ApiError, FieldError

__all__ = ["all_skus", "create_sku", "seed_catalog"]

_SELECT = "SELECT s.*, m.name AS merchant_name FROM skus s JOIN merchants m ON m.id = s.merchant_id"


def all_skus(conn: sqlite3.Connection) -> list[CatalogSku]:
    return [sku_from_row(r) for r in conn.execute(_SELECT + " ORDER BY s.sku_id")]


def _merchant(conn: sqlite3.Connection, sku: SkuIn) -> None:
    if sku.MerchantName is not None:
        conn.execute(
            "INSERT INTO merchants (id, name) VALUES (?, ?)"
            " ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            (sku.MerchantId, sku.MerchantName),
        )
    elif conn.execute("SELECT 1 FROM merchants WHERE id = ?", (sku.MerchantId,)).fetchone() is None:
        raise ApiError.unprocessable(
            [FieldError("MerchantName", f"required: merchant {sku.MerchantId} is new")]
        )


def _upsert(conn: sqlite3.Connection, sku: SkuIn) -> CatalogSku:
    _merchant(conn, sku)
    sku_id = sku.SkuId
    if sku_id is None:
        sku_id = conn.execute("SELECT coalesce(max(sku_id), 0) + 1 FROM skus").fetchone()[0]
    product_id = sku.ProductId if sku.ProductId is not None else sku_id
    conn.execute(
        "INSERT INTO skus (sku_id, product_id, sku, description, price, currency, merchant_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sku) DO UPDATE SET"
        " product_id = excluded.product_id, description = excluded.description,"
        " price = excluded.price, currency = excluded.currency,"
        " merchant_id = excluded.merchant_id",
        (sku_id, product_id, sku.Sku, sku.SkuDescription, sku.Price, sku.Currency, sku.MerchantId),
    )
    row = conn.execute(_SELECT + " WHERE s.sku = ?", (sku.Sku,)).fetchone()
    return sku_from_row(row)


def create_sku(conn: sqlite3.Connection, sku: SkuIn) -> CatalogSku:
    """Add a new SKU; ApiError 409 if its Sku or SkuId is already taken."""
    taken = conn.execute(
        "SELECT sku, sku_id FROM skus WHERE sku = ? OR sku_id = ?", (sku.Sku, sku.SkuId)
    ).fetchone()
    if taken is not None:
        raise ApiError(409, "sku_exists", f"SKU {taken['sku']} (SkuId {taken['sku_id']}) exists")
    return _upsert(conn, sku)


def seed_catalog(conn: sqlite3.Connection, seed: CatalogSeed) -> int:
    """Load a seed idempotently: merchants and SKUs are upserted by id / Sku."""
    for merchant in seed.Merchants:
        conn.execute(
            "INSERT INTO merchants (id, name) VALUES (?, ?)"
            " ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            (merchant.MerchantId, merchant.MerchantName),
        )
    for sku in seed.Skus:
        _upsert(conn, sku)
    return len(seed.Skus)
